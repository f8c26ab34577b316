"""How an environment is deployed to (its deploy settings), and the deployments themselves with their
stages and evidence."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from catalogue.models import Environment
from deployments import defaults, judge
from integrations import outbound


class Colour(models.TextChoices):
    BLUE = "blue", "Blue"
    GREEN = "green", "Green"

    @property
    def other(self) -> "Colour":
        return Colour.GREEN if self == Colour.BLUE else Colour.BLUE


def default_smoke_checks() -> list[dict]:
    return [{"path": "/healthz", "status": 200, "contains": "", "timeout": 5}]


def default_weights() -> list[int]:
    return list(defaults.WEIGHTS)


def validate_weights(value) -> None:
    """Percentages of traffic on the new colour, one per step, rising to 100."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 100 for w in value)
        or value != sorted(set(value))
        or value[-1] != 100
    ):
        raise ValidationError(
            "List rising percentages of traffic from 1 to 100, ending at 100, e.g. [25, 50, 100]."
        )


def validate_smoke_checks(value) -> None:
    shape = "Each smoke check is {path: '/…', status: 200, contains: '' (optional), timeout: seconds}."
    if not isinstance(value, list) or not value:
        raise ValidationError(shape)
    for check in value:
        if (
            not isinstance(check, dict)
            or not str(check.get("path", "")).startswith("/")
            or not isinstance(check.get("status", 200), int)
            or isinstance(check.get("status", 200), bool)
            or not isinstance(check.get("contains", ""), str)
            or not isinstance(check.get("timeout", 5), int | float)
            or not 0 < check.get("timeout", 5) <= 60
            or set(check) - {"path", "status", "contains", "timeout"}
        ):
            raise ValidationError(shape)


def validate_names(value) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError("List names, e.g. ['web-5xx-high'].")


def validate_dashboards(value) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith(("https://", "http://"))
        for k, v in value.items()
    ):
        raise ValidationError("Name each dashboard with its address, e.g. {'CloudWatch': 'https://…'}.")


# The webhook deployer's secret is at least this long.
SECRET_LENGTH = 32
# The addresses Greenlight calls, checked as every address from the settings is (integrations.outbound).
ADDRESSES = {
    "blue_url": "The blue colour's address",
    "green_url": "The green colour's address",
    "deployer_url": "The webhook deployer's address",
}
ARN = RegexValidator(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$", "Give an ARN, arn:aws:….")


class DeploySettings(models.Model):
    """How Greenlight deploys to an environment: the AWS account and load balancer, the two
    colours and how to reach each, the checks at every step, and the strategy. The SLA numbers
    default to the policy's."""

    class Strategy(models.TextChoices):
        BLUE_GREEN = "blue_green", "Blue-green in steps"

    class Deployer(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (your pipeline deploys the version to the colour)"
        GITHUB_ACTIONS = "github_actions", "GitHub Actions workflow (dispatched with the version and colour)"
        SIMULATED = "simulated", "Simulated (the demo's production)"

    class Telemetry(models.TextChoices):
        CLOUDWATCH = "cloudwatch", "CloudWatch"
        SIMULATED = "simulated", "Simulated (the demo's production)"

    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="deploy_settings")
    aws_region = models.CharField(max_length=32, blank=True, help_text="Empty: the portal's AWS_REGION.")
    role_arn = models.CharField(
        max_length=300,
        blank=True,
        validators=[ARN],
        help_text="An IAM role to assume in the environment's account.",
    )
    listener_arn = models.CharField(
        max_length=300, validators=[ARN], help_text="The ALB listener that shifts traffic."
    )
    rule_arn = models.CharField(
        max_length=300,
        blank=True,
        validators=[ARN],
        help_text="Shift on this listener rule instead of the default action.",
    )
    blue_target_group_arn = models.CharField(max_length=300, validators=[ARN])
    green_target_group_arn = models.CharField(max_length=300, validators=[ARN])
    live_colour = models.CharField(max_length=5, choices=Colour.choices, default=Colour.BLUE)
    blue_url = models.URLField(blank=True, help_text="Reaches the blue colour directly, for smoke tests.")
    green_url = models.URLField(blank=True, help_text="Reaches the green colour directly, for smoke tests.")
    smoke_checks = models.JSONField(default=default_smoke_checks, validators=[validate_smoke_checks])
    max_error_rate = models.FloatField(
        default=defaults.MAX_ERROR_RATE,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="5xx per request, 0.001 = 0.1 %.",
    )
    max_p95_ms = models.PositiveIntegerField(default=defaults.MAX_P95_MS)
    max_p99_ms = models.PositiveIntegerField(default=defaults.MAX_P99_MS)
    alarm_names = models.JSONField(default=list, blank=True, validators=[validate_names])
    min_requests = models.PositiveIntegerField(
        default=defaults.MIN_REQUESTS, help_text="Requests a step must see before its metrics are judged."
    )
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.BLUE_GREEN)
    weights = models.JSONField(default=default_weights, validators=[validate_weights])
    bake_seconds = models.PositiveIntegerField(default=defaults.BAKE_SECONDS)
    analysis_seconds = models.PositiveIntegerField(
        default=defaults.ANALYSIS_SECONDS,
        validators=[MinValueValidator(1)],
        help_text="How often a step is judged. ALB metrics come per minute, so 60 or more on AWS.",
    )
    health_timeout_seconds = models.PositiveIntegerField(
        default=defaults.HEALTH_TIMEOUT_SECONDS,
        validators=[MinValueValidator(1)],
        help_text="How long the new colour may take to become healthy.",
    )
    deployer_timeout_seconds = models.PositiveIntegerField(
        default=defaults.DEPLOYER_TIMEOUT_SECONDS,
        validators=[MinValueValidator(1)],
        help_text="How long the deployer (a workflow run) may take; the health timeout counts after it.",
    )
    database_instance = models.CharField(
        max_length=100, blank=True, help_text="The RDS instance snapshotted before each deployment."
    )
    deployer = models.CharField(max_length=16, choices=Deployer.choices, default=Deployer.WEBHOOK)
    deployer_url = models.URLField(blank=True, help_text="The webhook deployer's address.")
    # Signs each request of the webhook deployer; written, never shown (the API takes it, the
    # audit trail says only that it was set or changed).
    deployer_secret = models.CharField(
        max_length=200, blank=True, help_text="The webhook deployer's signing secret (32 characters or more)."
    )
    github_workflow = models.CharField(
        max_length=200,
        blank=True,
        help_text="The GitHub Actions workflow that deploys, by file name (deploy.yml) or id.",
    )
    github_workflow_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="The branch or tag the workflow runs from; empty: the environment's branch.",
    )
    verify_seconds = models.PositiveIntegerField(
        default=defaults.VERIFY_SECONDS,
        help_text="Immediate verification after 100 %: a failure in this time rolls back by itself.",
    )
    monitor_seconds = models.PositiveIntegerField(
        default=defaults.MONITOR_SECONDS,
        help_text="Short-term monitoring after the verification (policy: 1-4 hours); the old colour is kept.",
    )
    monitor_interval_seconds = models.PositiveIntegerField(
        default=defaults.MONITOR_INTERVAL_SECONDS,
        validators=[MinValueValidator(1)],
        help_text="How often the monitoring checks the live colour.",
    )
    telemetry = models.CharField(max_length=16, choices=Telemetry.choices, default=Telemetry.CLOUDWATCH)
    dashboards = models.JSONField(default=dict, blank=True, validators=[validate_dashboards])
    alert_channel = models.CharField(
        max_length=80, default="#production-alerts", help_text="Where a failed or stuck deployment is told."
    )

    class Meta:
        verbose_name_plural = "deploy settings"

    def __str__(self) -> str:
        return f"Deploy settings of {self.environment}"

    def clean(self):
        if not settings.DEMO:  # the simulated production is the demo's, and only there
            if self.deployer == self.Deployer.SIMULATED:
                raise ValidationError(
                    {"deployer": "The simulated deployer is the demo's (DEMO=true): choose another."}
                )
            if self.telemetry == self.Telemetry.SIMULATED:
                raise ValidationError(
                    {"telemetry": "The simulated telemetry is the demo's (DEMO=true): choose cloudwatch."}
                )
        if self.telemetry == self.Telemetry.CLOUDWATCH and self.analysis_seconds < 60:
            raise ValidationError(
                {"analysis_seconds": "ALB metrics come per minute: judge a step every 60 s or more."}
            )
        if self.blue_target_group_arn and self.blue_target_group_arn == self.green_target_group_arn:
            raise ValidationError(
                {"green_target_group_arn": "Blue and green are two different target groups."}
            )
        if self.deployer == self.Deployer.WEBHOOK and not self.deployer_url:
            raise ValidationError({"deployer_url": "The webhook deployer needs the address to call."})
        if self.deployer == self.Deployer.WEBHOOK and len(self.deployer_secret) < SECRET_LENGTH:
            raise ValidationError(
                {
                    "deployer_secret": "The webhook deployer signs each request with a secret your pipeline "
                    f"checks: give one of {SECRET_LENGTH} characters or more."
                }
            )
        for name, what in ADDRESSES.items():
            try:
                outbound.validate_url(getattr(self, name))
            except ValidationError as error:
                raise ValidationError({name: f"{what}: {' '.join(error.messages)}"}) from None
        # Dashboards are links people open, never fetched here; still no address the portal itself
        # may not reach (the metadata service, a link-local or private host) goes on every page.
        for label, address in (self.dashboards if isinstance(self.dashboards, dict) else {}).items():
            try:
                outbound.validate_url(address)
            except ValidationError as error:
                raise ValidationError(
                    {"dashboards": f"The dashboard {label}: {' '.join(error.messages)}"}
                ) from None
        if 0 < self.verify_seconds < self.analysis_seconds:
            raise ValidationError(
                {
                    "verify_seconds": "The verification lasts at least one judgement "
                    f"({self.analysis_seconds} s), or 0 for none."
                }
            )
        if self.deployer == self.Deployer.GITHUB_ACTIONS and not self.github_workflow:
            raise ValidationError(
                {"github_workflow": "The GitHub Actions deployer needs the workflow to run, e.g. deploy.yml."}
            )

    def target_group(self, colour: str) -> str:
        return self.blue_target_group_arn if colour == Colour.BLUE else self.green_target_group_arn

    def url_of(self, colour: str) -> str:
        return self.blue_url if colour == Colour.BLUE else self.green_url


class Deployment(models.Model):
    """One release of a change into an environment, driven step by step by short tasks from the
    state kept here: what the engine wants on the load balancer (`desired_weight`) and what it
    confirmed there (`applied_weight`) never disagree once it is at rest."""

    class State(models.TextChoices):
        PREFLIGHT = "preflight", "Pre-flight"
        RELEASING = "releasing", "Releasing"
        DEPLOYING = "deploying", "Deploying to the idle colour"
        SMOKE = "smoke", "Smoke tests on the idle colour"
        SHIFTING = "shifting", "Shifting traffic"
        MONITORING = "monitoring", "Monitoring"
        ROLLING_BACK = "rolling_back", "Rolling back"
        SUCCEEDED = "succeeded", "Succeeded"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"

    ENDED = (State.SUCCEEDED, State.ROLLED_BACK, State.FAILED)

    change = models.ForeignKey("changes.ChangeRequest", on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PREFLIGHT)
    started_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, related_name="deployments_started"
    )
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    version = models.CharField(max_length=32, blank=True)
    from_colour = models.CharField(max_length=5, choices=Colour.choices)
    to_colour = models.CharField(max_length=5, choices=Colour.choices)
    plan = models.JSONField(help_text="The weights of the steps, copied from the settings at the start.")
    bake_seconds = models.PositiveIntegerField()
    analysis_seconds = models.PositiveIntegerField()
    step = models.PositiveSmallIntegerField(default=0, help_text="The step of the plan being shifted to.")
    desired_weight = models.PositiveSmallIntegerField(default=0, help_text="% on the new colour wanted.")
    applied_weight = models.PositiveSmallIntegerField(default=0, help_text="% on the new colour confirmed.")
    state_since = models.DateTimeField(help_text="When the current state (or step) began.")
    next_run_at = models.DateTimeField(help_text="When the engine looks at it next.")
    paused_at = models.DateTimeField(null=True, blank=True)
    promote_requested = models.BooleanField(default=False)
    rollback_requested = models.BooleanField(default=False)
    rollback_reason = models.TextField(blank=True)
    revert_requested = models.BooleanField(default=False)
    rollback_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="rollbacks"
    )
    snapshot_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Retries in a row after a passing error."
    )
    error = models.TextField(blank=True, help_text="What went wrong, in words.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker holds it until then.")
    lease_owner = models.CharField(max_length=100, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When it was last said to be stuck.")
    deployer_ref = models.CharField(
        max_length=300, blank=True, help_text="What the deployer started (a workflow run), to follow it."
    )
    live_at = models.DateTimeField(
        null=True, blank=True, help_text="When all traffic reached the new colour."
    )
    custody = models.JSONField(
        default=list,
        blank=True,
        help_text="The chain of custody as checked when it started and once its release was cut.",
    )
    custody_checked_at = models.DateTimeField(null=True, blank=True)
    monitor_until = models.DateTimeField(null=True, blank=True, help_text="When the monitoring passes.")
    regression = models.TextField(blank=True, help_text="What regressed during the monitoring, in words.")
    regressed_at = models.DateTimeField(null=True, blank=True)
    ended_early_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_early_reason = models.TextField(blank=True, help_text="Why the monitoring was ended early.")
    report = models.JSONField(null=True, blank=True, help_text="The post-deployment report, once it passed.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=models.Q(ended_at__isnull=True),
                name="one_active_deployment_per_environment",
            )
        ]

    def __str__(self) -> str:
        return f"Deployment {self.pk} of {self.change_id} to {self.environment_id}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("deployment-detail", args=[self.pk])

    @classmethod
    def running_in(cls, environment_id: int):
        """The deployment running in the environment (at most one), or None."""
        return (
            cls.objects.filter(environment_id=environment_id, ended_at__isnull=True)
            .select_related("change")
            .first()
        )

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def weights(self) -> dict[str, int]:
        """Traffic on each colour, as confirmed on the load balancer."""
        return {self.to_colour: self.applied_weight, self.from_colour: 100 - self.applied_weight}

    def can_transition_to(self, state: str) -> bool:
        return state in ALLOWED_TRANSITIONS[self.state]

    def transition_error(self, state: str) -> str:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[self.state])) or "nothing, it has ended"
        return f"Deployment {self.pk} is {self.state}; it cannot become {state} (it can become: {allowed})."


_D = Deployment.State
# Where a deployment may go from each state: forward through its stages; from any running state to
# a rollback, or to failed (abandoned, or refused before traffic moved); a live one back to rolling
# back while its old colour is kept; nowhere once rolled back or failed. Checked on every move.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    _D.PREFLIGHT: frozenset({_D.RELEASING, _D.ROLLING_BACK, _D.FAILED}),
    _D.RELEASING: frozenset({_D.DEPLOYING, _D.ROLLING_BACK, _D.FAILED}),
    _D.DEPLOYING: frozenset({_D.SMOKE, _D.ROLLING_BACK, _D.FAILED}),
    _D.SMOKE: frozenset({_D.SHIFTING, _D.ROLLING_BACK, _D.FAILED}),
    _D.SHIFTING: frozenset({_D.SHIFTING, _D.MONITORING, _D.ROLLING_BACK, _D.FAILED}),
    _D.MONITORING: frozenset({_D.SUCCEEDED, _D.ROLLING_BACK, _D.FAILED}),
    _D.ROLLING_BACK: frozenset({_D.ROLLED_BACK, _D.FAILED}),
    _D.SUCCEEDED: frozenset({_D.ROLLING_BACK}),
    _D.ROLLED_BACK: frozenset(),
    _D.FAILED: frozenset(),
}


class Stage(models.Model):
    """A stage of a deployment (pre-flight, release, deploy, smoke tests, each traffic step, a
    rollback) with every check it made and the values it measured."""

    class Kind(models.TextChoices):
        PREFLIGHT = "preflight", "Pre-flight"
        RELEASE = "release", "Release"
        DEPLOY = "deploy", "Deploy"
        SMOKE = "smoke", "Smoke tests"
        TRAFFIC = "traffic", "Traffic"
        VERIFY = "verify", "Immediate verification"
        MONITOR = "monitor", "Monitoring"
        ROLLBACK = "rollback", "Rollback"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="stages")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    weight = models.PositiveSmallIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=list, help_text="Each check: name, ok, value, threshold, at, detail.")
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"

    @staticmethod
    def evidence(name: str, ok: bool | None, value=None, threshold=None, detail: str = "") -> dict:
        """One piece of evidence (deployments.judge.evidence)."""
        return judge.evidence(name, ok, value, threshold, detail)
