from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.mfa import totp_code


class Command(BaseCommand):
    help = "Prints a demo user's current authenticator code (demo settings only)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if not settings.DEMO:
            raise CommandError(
                "demo_otp works only with the demo settings on (DEMO=true, the SQLite default)."
            )
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).order_by("id").first()
        if device is None:
            raise CommandError(f"{username!r} has no authenticator; run `manage.py demo_seed` first.")
        self.stdout.write(totp_code(device))
