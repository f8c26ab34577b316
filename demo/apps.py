from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The simulated production and the demo's commands: installed only where DEMO is on."""

    name = "demo"
    verbose_name = "Demo"
