from django.apps import AppConfig


class ChangesConfig(AppConfig):
    name = "changes"

    def ready(self) -> None:
        from changes import snapshots

        snapshots.connect_signals()
