"""Seeds the demo team: enough people to carry a change through the default quorum. Safe to rerun.

Everyone signs in with the demo password and an authenticator whose otpauth:// URI is printed;
`python manage.py demo_otp USER` prints a user's current code instead of a phone.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal import services
from portal.models import SealedTOTPDevice, User
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


DEVELOPER = ("Dana Developer", "dana@example.com")

# The seeded changes' branches: branch, file, content, commit message.
DEMO_BRANCHES = [
    ("storyboard-pdf", "export.py", "FORMATS = ['pdf']\n", "Export storyboards to PDF"),
    ("render-queue", "render.py", "QUEUE = 'fast'\n", "Move rendering to the new queue"),
    ("legacy-upload", "upload.py", "ROUTES = ['/v2/upload']\n", "Drop the legacy upload API"),
    ("thumbnail-crop", "thumbnails.py", "SAFE_AREA = 0.9\n", "Crop thumbnails to the safe area"),
    ("render-previews", "previews.py", "QUALITY = 85\n", "Sharpen the render previews"),
]


def signed_git(path, key, *args: str, author=DEVELOPER) -> str:
    """Runs git in the demo repository as `author`, signing with the demo's SSH key."""
    import subprocess

    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true"]
    who = ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
    done = subprocess.run(["git", "-C", str(path), *signing, *who, *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


def signed_commit(path, key, name: str, content: str, message: str) -> None:
    """A developer's signed commit of one file on the branch checked out."""
    from pathlib import Path

    (Path(path) / name).write_text(content)
    signed_git(path, key, "add", name)
    signed_git(path, key, "commit", "--quiet", "-m", message)


class Command(BaseCommand):
    help = "Creates the demo team (password greenlight-demo) with authenticators, when missing."

    def handle(self, *args, **options):
        if not settings.DEMO:
            raise CommandError("demo_seed runs only with the demo settings (DEMO=true, the SQLite default).")
        with transaction.atomic():
            created = self._seed()
        # The repository first: decisions are given on the commits of the changes' branches.
        repository = self._seed_repository()
        with transaction.atomic():
            changes = self._seed_changes()
        if repository and changes:
            self._ready_to_deploy()
        self.stdout.write(f"Demo team ({created} new), password {DEMO_PASSWORD}:")
        for username, _first, _last, role, capacities, _github, job in TEAM:
            user = User.objects.get(username=username)
            device = SealedTOTPDevice.objects.get(user=user, name="Demo authenticator")
            extra = f" + {', '.join(capacities)}" if capacities else ""
            self.stdout.write(f"  {username:<7} {Role(role).label}{extra}: {job}")
            self.stdout.write(f"          {device.config_url}")
        self.stdout.write("A code without a phone: .venv/bin/python manage.py demo_otp USERNAME")
        if changes:
            self.stdout.write(
                f"Seeded {changes} change requests: a draft, one waiting, one sent back, two approved "
                "and ready (the first scheduled now)."
            )
        if repository:
            self.stdout.write(
                f"Made the demo repository {repository}: main at v1.0.0, each change's work on its own "
                "branch."
            )

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
            SealedTOTPDevice.objects.get_or_create(
                user=user, name="Demo authenticator", defaults={"confirmed": True}
            )
        return created

    def _seed_changes(self) -> int:
        """Environments, services and a few changes in different states, made through the services."""
        from datetime import time

        from catalogue.models import ApprovalPolicy, Environment, Service
        from changes import releases
        from changes import services as changes
        from changes.models import ChangeRequest
        from integrations import scm

        if ChangeRequest.objects.exists():
            return 0
        policy = ApprovalPolicy.objects.order_by("id").first()
        staging, _ = Environment.objects.get_or_create(
            name="staging",
            defaults={
                "display_name": "Staging",
                "branch": "staging",
                "time_zone": "America/New_York",
                "url": "https://staging.aifilmstudio.com",
                "approval_policy": policy,
            },
        )
        production, _ = Environment.objects.get_or_create(
            name="production",
            defaults={
                "display_name": "Production",
                "branch": "main",
                "time_zone": "America/New_York",
                "url": "https://aifilmstudio.com",
                "is_production": True,
                "approval_policy": policy,
                "aws_account": "Production account",
                "database": "Production RDS (Multi-AZ with read replicas)",
                "cache": "Production ElastiCache (cluster mode, multi-AZ)",
                "salesforce_org": "Production org",
            },
        )
        web, _ = Service.objects.get_or_create(
            name="web",
            defaults={
                "team": "Studio",
                "repository": "aifilmstudio/web",
                "code_owners": ["alex-owner"],
                "on_status_page": True,
            },
        )
        render, _ = Service.objects.get_or_create(
            name="render-api",
            defaults={
                "team": "Render",
                "repository": "aifilmstudio/render-api",
                "code_owners": ["alex-owner"],
                "on_status_page": True,
            },
        )
        for service in (web, render):
            service.environments.set([staging, production])
        team = {user.username: user for user in User.objects.filter(username__in=[row[0] for row in TEAM])}
        # The process's low-traffic windows: production Tuesday to Thursday 02:00-05:00 New York time.
        changes.window_create(
            actor=team["riley"],
            environment=production,
            weekdays=[1, 2, 3],
            start_time=time(2),
            end_time=time(5),
        )
        changes.standard_template_create(
            actor=team["polly"],
            data={
                "name": "Renew a TLS certificate",
                "description": "Replaces the load balancer's certificate before it expires.",
                "rollback_plan": "Put the previous certificate back on the listener.",
                "risk": "low",
                "environment": production,
                "services": [web],
                "min_approvals": 1,
                "min_code_owner_approvals": 0,
                "required_sign_offs": [],
            },
        )

        def file(title, description, branch, **extra):
            fields = {
                "source_branch": branch,
                "rollback_plan": "Switch the load balancer back to blue; the previous version keeps running.",
                "environment": production,
                "services": [web],
                "stakeholders": [team["riley"]],
                "stakeholder_channels": ["#releases"],
                **extra,
            }
            data = changes.ChangeInput(title=title, description=description, **fields)
            return changes.change_create(actor=team["dana"], data=data)

        def submit(change):
            """Submitted, and its branch read as the worker would, so decisions go on its head."""
            changes.change_submit(actor=team["dana"], change=change)
            if scm.configured():
                releases.pull_request_read(change=change, scm=scm.repository())

        file("Storyboard export to PDF", "Adds PDF export to the storyboard editor.", "storyboard-pdf")
        waiting = file(
            "Faster render queue", "Moves rendering to the new queue.", "render-queue", services=[web, render]
        )
        submit(waiting)
        changes.change_decide(actor=team["alex"], change=waiting, decision="approve")
        changes.change_decide(actor=team["sam"], change=waiting, decision="approve", capacity="security")
        sent_back = file(
            "Drop legacy upload API",
            "Removes /v1/upload.",
            "legacy-upload",
            has_migrations=True,
            version_bump="major",
        )
        submit(sent_back)
        changes.change_decide(
            actor=team["bo"],
            change=sent_back,
            decision="request_changes",
            comment="Say how clients still on /v1/upload are told.",
        )
        for title, description, branch in [
            ("Fix thumbnail cropping", "Crops thumbnails to the safe area.", "thumbnail-crop"),
            ("Sharper render previews", "Tunes the preview quality.", "render-previews"),
        ]:
            approved = file(title, description, branch, version_bump="patch")
            submit(approved)
            for username, capacity in [
                ("alex", ""),
                ("bo", ""),
                ("casey", ""),
                ("sam", "security"),
                ("pat", "product"),
                ("lee", "engineering_lead"),
            ]:
                changes.change_decide(
                    actor=team[username], change=approved, decision="approve", capacity=capacity
                )
        return ChangeRequest.objects.count()

    def _ready_to_deploy(self) -> None:
        """The approved changes made ready as they would be in life: CI deployed each approved
        commit to staging and its tests passed (CI's reports, stamped when they arrive), each
        person's checklist item ticked by a person it names, CI's checks passing; then the demo's
        clock moves two days on, past the soak, to the opening of production's next deployment
        window, and the first change is booked into it."""
        from datetime import timedelta

        from catalogue.models import Environment
        from changes import releases
        from changes import services as changes
        from changes.calendar import next_free_slot
        from changes.choices import ChangeStatus
        from changes.models import ChangeRequest
        from portal import clock

        ready = list(ChangeRequest.objects.filter(status=ChangeStatus.APPROVED).order_by("pk"))
        team = {user.username: user for user in User.objects.filter(username__in=[row[0] for row in TEAM])}
        vouchers = {"security": team["sam"], "product": team["pat"], "engineering_lead": team["lee"]}
        staging = Environment.objects.get(name="staging")
        for number, change in enumerate(ready, start=41):
            with transaction.atomic():
                for result in ("deployed", "green"):
                    changes.staging_run_record(
                        actor=None,
                        environment=staging,
                        commit=change.approved_commit,
                        version=f"build-{number}",
                        result=result,
                    )
                for item in change.checklist.filter(integration="", done=False):
                    if item.gates_deploy:
                        who = vouchers.get(item.vouched_by, team["casey"])
                        changes.checklist_item_set(actor=who, item=item, done=True)
                releases.check_run_record(
                    change=change,
                    name="tests",
                    status="completed",
                    conclusion="success",
                    head_sha=change.approved_commit,
                    url="",
                )
        soaked = clock.now() + timedelta(hours=ready[0].environment.approval_policy.soak_hours, minutes=1)
        slot = next_free_slot(ready[0], now=soaked)
        clock.shift(slot.start - clock.now())
        for change in ready:
            changes.soak_check(change=change)
        with transaction.atomic():
            slot = next_free_slot(ready[0], now=clock.now())
            changes.change_schedule(actor=team["riley"], change=ready[0], start=slot.start, end=slot.end)

    def _seed_repository(self) -> str:
        """A repository on disk to release in: main tagged v1.0.0 and a staging branch a few
        commits ahead, every commit signed with the demo's SSH key, which the allowed-signers
        file trusts (the portal signs its own merges and tags with it too)."""
        import subprocess
        from pathlib import Path

        if not settings.GIT_REPOSITORY_PATH or not settings.GIT_SIGNING_KEY:
            return ""
        path, key = Path(settings.GIT_REPOSITORY_PATH), Path(settings.GIT_SIGNING_KEY)
        if (path / ".git").exists():
            return ""
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "greenlight-demo", "-f", str(key)],
                check=True,
            )
        Path(settings.GIT_ALLOWED_SIGNERS).write_text(f"* {key.with_suffix('.pub').read_text()}")
        path.mkdir(parents=True)

        def git(*args, author=DEVELOPER):
            return signed_git(path, key, *args, author=author)

        def commit(name, content, message):
            signed_commit(path, key, name, content, message)

        git("init", "--quiet", "--initial-branch=main")
        commit("README.md", "# AI Film Studio\n", "Start the studio")
        commit("render.py", "QUEUE = 'legacy'\n", "Render through the legacy queue")
        commit("upload.py", "ROUTES = ['/v1/upload', '/v2/upload']\n", "Serve uploads")
        commit("CODEOWNERS", "*  @alex-owner\n*.md  @dana-dev @alex-owner\n", "Name the code owners")
        git("tag", "-s", "v1.0.0", "-m", "v1.0.0", author=("Greenlight", "greenlight@localhost"))
        git("branch", "staging")  # what the staging environment runs
        # Each change's work on a branch of its own, from the release: a change ships its commits only.
        for branch, name, content, message in DEMO_BRANCHES:
            git("checkout", "--quiet", "-b", branch, "v1.0.0")
            commit(name, content, message)
        git("checkout", "--quiet", "main")
        return str(path)
