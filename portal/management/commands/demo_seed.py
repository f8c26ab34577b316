"""Seeds the demo team: enough people to carry a change through the default quorum. Safe to rerun.

Everyone signs in with the demo password and an authenticator whose otpauth:// URI is printed;
`python manage.py demo_otp USER` prints a user's current code instead of a phone.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import services
from portal.models import User
from portal.roles import Capacity, Role

DEMO_PASSWORD = "greenlight-demo"  # noqa: S105 (printed to the person running the demo)

# username, first name, last name, role, capacities, GitHub login, what they do in the demo
TEAM = [
    ("dana", "Dana", "Requester", Role.DEVELOPER, [], "dana-dev", "files change requests"),
    ("alex", "Alex", "Owner", Role.DEVELOPER, [], "alex-owner", "approver and code owner"),
    ("bo", "Bo", "Tester", Role.QA, [], "bo-qa", "approver"),
    ("casey", "Casey", "Ops", Role.DEVOPS, [], "casey-ops", "approver"),
    ("sam", "Sam", "Security", Role.DEVELOPER, [Capacity.SECURITY], "sam-sec", "security sign-off"),
    ("pat", "Pat", "Product", Role.QA, [Capacity.PRODUCT], "pat-product", "product sign-off"),
    (
        "lee",
        "Lee",
        "Lead",
        Role.DEVELOPER,
        [Capacity.ENGINEERING_LEAD],
        "lee-lead",
        "engineering lead sign-off",
    ),
    ("riley", "Riley", "Release", Role.RELEASE_MANAGER, [], "riley-rm", "deploys and rolls back"),
    ("sky", "Sky", "Reliability", Role.SRE, [], "sky-sre", "runs incidents"),
    ("audrey", "Audrey", "Auditor", Role.AUDITOR, [], "", "reads and exports evidence"),
    (
        "polly",
        "Polly",
        "Policy",
        Role.RELEASE_MANAGER,
        [Capacity.POLICY_ADMIN],
        "polly-policy",
        "keeps the policy",
    ),
    ("admin", "Ada", "Admin", Role.ADMIN, [], "", "break-glass administrator"),
]


class Command(BaseCommand):
    help = "Creates the demo team (password greenlight-demo) with authenticators, when missing."

    def handle(self, *args, **options):
        if not settings.DEMO:
            raise CommandError("demo_seed runs only with the demo settings (DEMO=true, the SQLite default).")
        with transaction.atomic():
            created = self._seed()
        self.stdout.write(f"Demo team ({created} new), password {DEMO_PASSWORD}:")
        for username, _first, _last, role, capacities, _github, job in TEAM:
            user = User.objects.get(username=username)
            device = TOTPDevice.objects.get(user=user, name="Demo authenticator")
            extra = f" + {', '.join(capacities)}" if capacities else ""
            self.stdout.write(f"  {username:<7} {Role(role).label}{extra}: {job}")
            self.stdout.write(f"          {device.config_url}")
        self.stdout.write("A code without a phone: .venv/bin/python manage.py demo_otp USERNAME")

    def _seed(self) -> int:
        created = 0
        for username, first, last, role, capacities, github, _ in TEAM:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = services.user_create(
                    actor=None,
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@example.com",
                    github_login=github,
                    reason="demo seed",
                )
                for capacity in capacities:
                    services.user_capacity_grant(actor=None, user=user, capacity=capacity)
                created += 1
            TOTPDevice.objects.get_or_create(
                user=user, name="Demo authenticator", defaults={"confirmed": True}
            )
        return created
