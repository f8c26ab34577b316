import factory
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.mfa import totp_code
from portal.models import User, UserCapacity

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    time_zone = "UTC"

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def capacities(self, create, extracted, **kwargs):
        """capacities=["policy_admin", ...]"""
        if not create or not extracted:
            return
        for capacity in extracted:
            UserCapacity.objects.create(user=self, capacity=capacity, granted_at=timezone.now())
        self.forget_rights()


def totp_device(user) -> TOTPDevice:
    """A confirmed authenticator for the user (made once)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)


def otp_code(device: TOTPDevice) -> str:
    """The code the user's app would show for the next step django-otp still accepts.

    django-otp refuses a code at or before the last one used, so after one use this is the next
    time step's code (within its tolerance of one step), made without waiting.
    """
    return totp_code(device)


class ApprovalPolicyFactory(factory.django.DjangoModelFactory):
    """The default policy of the production process (3 approvals, 1 code owner, 3 sign-offs)."""

    class Meta:
        model = "catalogue.ApprovalPolicy"
        django_get_or_create = ["name"]

    name = "Production process"


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "catalogue.Environment"
        django_get_or_create = ["name"]

    name = "production"
    display_name = "Production"
    branch = "main"
    time_zone = "America/New_York"
    is_production = True
    approval_policy = factory.SubFactory(ApprovalPolicyFactory)


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "incidents.Incident"

    title = "Sign-in fails for everyone"
    severity = "P1"
    created_at = factory.LazyFunction(timezone.now)
    detected_at = factory.SelfAttribute("created_at")


class StandardChangeTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "changes.StandardChangeTemplate"
        django_get_or_create = ["name"]

    name = "Renew a TLS certificate"
    description = "Replaces the certificate on the load balancer before it expires."
    rollback_plan = "Put the previous certificate back on the listener."
    environment = factory.SubFactory(EnvironmentFactory)
    created_by = factory.SubFactory(UserFactory, username="policy-keeper")
    created_at = factory.LazyFunction(timezone.now)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "catalogue.Service"
        django_get_or_create = ["name"]
        skip_postgeneration_save = True

    name = "web"
    team = "Studio"
    repository = "aifilmstudio/web"
    code_owners = factory.LazyFunction(lambda: ["alex-owner"])

    @factory.post_generation
    def environments(self, create, extracted, **kwargs):
        if create:
            self.environments.set(extracted or [EnvironmentFactory()])


def change_create(requester, **fields):
    """A change filed through the service, as a person would file it."""
    from django.db import transaction

    from changes.services import ChangeInput
    from changes.services import change_create as create

    data = {
        "title": "Faster render queue",
        "description": "Moves rendering to the new queue.",
        "rollback_plan": "Switch traffic back to blue; the queue drains by itself.",
        "environment": EnvironmentFactory(),
        "services": [ServiceFactory()],
        **fields,
    }
    with transaction.atomic():
        return create(actor=requester, data=ChangeInput(**data))


def pull_request_read(change):
    """What the worker's task does once a change is submitted: its branch read from the repository
    (when one is configured), so that decisions are given on its head commit."""
    from changes import releases
    from integrations import scm

    if scm.configured():
        releases.pull_request_read(change=change, scm=scm.repository())


def approved_change(requester, environment, **fields):
    """A change filed, submitted and approved by one QA engineer (for a one-approval policy), on
    the head commit of its branch when a repository is configured."""
    from django.db import transaction

    from changes import services

    change = change_create(requester, environment=environment, **fields)
    with transaction.atomic():
        services.change_submit(actor=requester, change=change)
    pull_request_read(change)
    with transaction.atomic():
        services.change_decide(actor=UserFactory(role="qa"), change=change, decision="approve")
    change.refresh_from_db()
    assert change.status == "approved"
    return change


def deploying_at(change, scm):
    """A change whose branch was read in `scm`, approved on its head, and whose deployment has
    started (the approvals and the engine's part written directly, for tests of what comes after)."""
    from changes import releases

    pull = releases.pull_request_read(change=change, scm=scm)
    change.status = "deploying"
    change.approved_commit = pull.head_sha
    change.save(update_fields=["status", "approved_commit"])
    return change
