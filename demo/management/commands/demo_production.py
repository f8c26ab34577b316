"""Runs the demo's simulated production until stopped: AWS in a moto server (an application load
balancer with blue and green target groups, CloudWatch, RDS), the two colours as local HTTP
services, and users' traffic split by the listener's weights."""

import logging
import signal
import threading
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo import simulation, simulator

# The demo's production: quick steps, so a person watches a whole deployment in two minutes.
DEMO_SETTINGS = {
    "weights": [25, 50, 100],
    "bake_seconds": 15,
    "analysis_seconds": 5,
    "min_requests": 20,
    "health_timeout_seconds": 60,
    "verify_seconds": 20,
    "monitor_seconds": 40,
    "monitor_interval_seconds": 10,
    "smoke_checks": [{"path": "/healthz", "status": 200, "contains": "", "timeout": 5}],
}


class Command(BaseCommand):
    help = "Runs the demo's simulated production (AWS in moto, blue and green, traffic) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--blue-port", type=int, default=8101)
        parser.add_argument("--green-port", type=int, default=8102)
        parser.add_argument("--rate", type=int, default=20, help="Requests a second from the users.")

    def handle(self, *args, blue_port, green_port, rate, **options):
        from moto.server import ThreadedMotoServer

        if not settings.DEMO or not settings.AWS_ENDPOINT_URL:
            raise CommandError(
                "demo_production runs in the demo, with AWS_ENDPOINT_URL set to its moto server."
            )
        address = urlparse(settings.AWS_ENDPOINT_URL)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto answering every call
        aws_server = ThreadedMotoServer(ip_address=address.hostname, port=address.port, verbose=False)
        aws_server.start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            world = simulator.build(settings.AWS_ENDPOINT_URL, name="studio", region=settings.AWS_REGION)
            self._anchor_bucket()
            colours = {
                "blue": simulator.serve_colour("blue", world["blue"], blue_port),
                "green": simulator.serve_colour("green", world["green"], green_port),
            }
            urls = {c: f"http://127.0.0.1:{server.server_address[1]}" for c, server in colours.items()}
            deploy = self._configure(world, urls, stop)
            if deploy is None:
                return
            aws = self._live(world, deploy, self.admin)
            self.stdout.write(
                f"Simulated production: AWS at {settings.AWS_ENDPOINT_URL}, blue at {urls['blue']}, "
                f"green at {urls['green']}, {rate} requests a second; {deploy.live_colour} is live."
            )
            traffic = simulator.Traffic(
                aws,
                listener_arn=world["listener"],
                colours={c: (world[c], urls[c]) for c in ("blue", "green")},
                rate=rate,
            )
            traffic.run(stop)
        finally:
            aws_server.stop()

    @staticmethod
    def _anchor_bucket() -> None:
        """The bucket the audit chain's anchors go to (AUDIT_ANCHOR_BUCKET, which bin/demo sets),
        with Object Lock, as a real installation's must have."""
        import boto3

        if settings.AUDIT_ANCHOR_BUCKET:
            s3 = boto3.client("s3", endpoint_url=settings.AWS_ENDPOINT_URL, region_name=settings.AWS_REGION)
            s3.create_bucket(Bucket=settings.AUDIT_ANCHOR_BUCKET, ObjectLockEnabledForBucket=True)

    def _configure(self, world: dict, urls: dict, stop: threading.Event):
        """Points production's deploy settings at this run's load balancer (moto starts empty each
        time), through the audited service; waits while a deployment from a previous run ends."""
        from catalogue.models import Environment
        from deployments.services import DeployRefused, deploy_settings_save
        from portal.models import User

        production = Environment.objects.filter(name="production").first()
        admin = User.objects.filter(username="polly").first()
        if production is None or admin is None:
            raise CommandError("Seed the demo first: python manage.py demo_seed")
        self.admin = admin
        fields = {
            **DEMO_SETTINGS,
            "aws_region": settings.AWS_REGION,
            "listener_arn": world["listener"],
            "blue_target_group_arn": world["blue"],
            "green_target_group_arn": world["green"],
            "blue_url": urls["blue"],
            "green_url": urls["green"],
            "database_instance": world["database"],
            "deployer": "simulated",
            "telemetry": "simulated",
        }
        from deployments.models import Deployment
        from deployments.services import deployment_abandon

        running = Deployment.running_in(production.pk)
        if running is not None:  # its load balancer went with the last run's moto server
            why = "the simulated production restarted: the load balancer it ran on is gone."
            deployment_abandon(actor=admin, deployment=running, reason=why)
            self.stdout.write(f"Deployment {running.pk} of {running.change.number} abandoned: {why}")
        while not stop.is_set():
            try:
                return deploy_settings_save(actor=admin, environment=production, **fields)
            except DeployRefused as refused:  # a deployment started this very moment
                self.stdout.write(f"Waiting: {refused.reasons[0]}")
                stop.wait(5)
        return None

    def _live(self, world: dict, deploy, viewer):
        """All traffic on the live colour, which runs the live release; the other colour runs the
        release before it (what a rollback goes back to)."""
        from deployments.selectors import environment_releases
        from integrations.aws import Aws

        aws = Aws(region=settings.AWS_REGION, endpoint_url=settings.AWS_ENDPOINT_URL)
        live, idle = deploy.live_colour, "green" if deploy.live_colour == "blue" else "blue"
        aws.set_weights({world[live]: 100, world[idle]: 0}, listener_arn=world["listener"])
        releases = environment_releases(viewer, deploy.environment.name)
        current = releases.live.version if releases.live else "v1.0.0"
        before = releases.previous.version if releases.previous else ""
        simulation.behave(world[live], version=current, fault="", healthy=True, alarms=[])
        simulation.behave(world[idle], version=before, fault="", healthy=True, alarms=[])
        return aws
