from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import access_cache, checks  # noqa: F401 (checks registers itself)

        access_cache.connect_signals()
