from django.core.management.base import BaseCommand, CommandError

from portal import services


class Command(BaseCommand):
    help = (
        "The audit trail: `audit verify` walks the whole hash chain, checks it against the newest "
        "anchor and names the first bad event; `audit anchor` writes the chain's head out now."
    )

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["verify", "anchor"])

    def handle(self, *args, verb, **options):
        if verb == "anchor":
            anchor = services.audit_anchor_write()
            if anchor is None:
                self.stdout.write("audit chain empty: nothing to anchor")
            else:
                self.stdout.write(f"audit chain anchored at event {anchor.event_id} ({anchor.count} events)")
            return
        verdict = services.audit_verify_run(full=True)
        if not verdict.ok:
            raise CommandError(f"audit chain broken at event {verdict.first_bad_id}: {verdict.problem}")
        anchored = (
            f", matching the anchor of {verdict.anchor_written_at:%Y-%m-%d %H:%M} UTC at event "
            f"{verdict.anchor_event_id}"
            if verdict.anchor_event_id
            else ", no anchor written yet"
        )
        self.stdout.write(f"audit chain intact: {verdict.checked} events checked{anchored}")
