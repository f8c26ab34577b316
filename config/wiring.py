"""Who acts on each hook, in one place (portal.hooks says what a hook is and how it runs).

Read this to know what else happens when a lower layer acts: every subscriber of every hook, and
the backends the apps above add to the engine's choices, are connected here at start-up.
"""

from django.apps import apps

from changes import snapshots
from deployments import change_page
from deployments.metrics import DeploymentCollector
from deployments.models import Deployment
from incidents import subscribers as incidents
from incidents.models import Incident
from integrations import anchors
from integrations import notify as channels
from portal import chain, hooks, metrics, notify
from portal.models import Notification


def connect() -> None:
    chain.key_source_register(anchors.audit_keys)
    chain.bucket_store_register(anchors.S3AnchorStore)
    notify.transport_register(Notification.Channel.EMAIL, channels.email)
    notify.transport_register(Notification.Channel.SLACK, channels.slack)
    notify.transport_register(Notification.Channel.PAGERDUTY, channels.pagerduty)
    hooks.change_fixes_forward.connect(incidents.change_fixes_forward)
    hooks.change_filed.connect(incidents.change_filed)
    hooks.emergency_grounds.connect(incidents.emergency_grounds)
    hooks.deployment_rolled_back.connect(incidents.deployment_rolled_back)
    hooks.change_page.connect(change_page.change_page)
    metrics.registry.register(DeploymentCollector())
    snapshots.watch_own(Deployment, change_field="change_id")
    snapshots.watch_catalogue(Incident)
    if apps.is_installed("demo"):
        _demo()


def _demo() -> None:
    from demo import backends, views
    from deployments import outside
    from deployments.models import DeploySettings

    outside.deployer_register(DeploySettings.Deployer.SIMULATED, lambda deploy: backends.SimulatedDeployer())
    outside.telemetry_register(
        DeploySettings.Telemetry.SIMULATED,
        lambda aws, deploy: backends.SimulatedTelemetry(aws, listener_arn=deploy.listener_arn),
    )
    hooks.environment_panels.connect(views.simulation_panel)
