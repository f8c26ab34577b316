"""Seeds the demo: a signed-in administrator to look around with. Safe to run again."""

from django.core.management.base import BaseCommand
from django.db import transaction

from portal.models import User
from portal.services import audit_record

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "greenlight-demo"  # noqa: S105 (printed to the person running the demo)


class Command(BaseCommand):
    help = "Creates the demo administrator (admin / greenlight-demo) when missing."

    @transaction.atomic
    def handle(self, *args, **options):
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={
                "first_name": "Demo",
                "last_name": "Admin",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
            audit_record(
                actor=None,
                action="user.create",
                target=user,
                after={"username": user.username, "is_superuser": True, "reason": "demo seed"},
            )
        self.stdout.write(f"demo user: {DEMO_USERNAME} / {DEMO_PASSWORD}")
