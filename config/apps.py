from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself, last among the installed apps: once every app is ready, it connects the
    hooks to their subscribers (config.wiring)."""

    name = "config"
    verbose_name = "Greenlight"

    def ready(self) -> None:
        from config import wiring

        wiring.connect()
