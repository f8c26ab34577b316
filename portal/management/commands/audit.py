from django.core.management.base import BaseCommand, CommandError

from portal.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Checks the audit trail: `audit verify` walks the hash chain and names the first bad event."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["verify"])

    def handle(self, *args, verb, **options):
        verdict = audit_chain_verify()
        if not verdict.ok:
            raise CommandError(f"audit chain broken at event {verdict.first_bad_id}: {verdict.problem}")
        self.stdout.write(f"audit chain intact: {verdict.checked} events checked")
