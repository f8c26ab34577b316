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
