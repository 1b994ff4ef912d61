from django.core.management.base import BaseCommand, CommandError, no_translations

from crm.core.audit.services import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit ledger: every entry hash, every link, sequence continuity and every "
        "checkpoint signature. Exit code 1 on the first problem found, 0 when the chain is intact."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=2000, help="Entries read per query.")

    @no_translations
    def handle(self, *args, batch_size=2000, **options):
        result = verify_chain(batch_size=batch_size)
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(warning))
        if result.ok:
            self.stdout.write(self.style.SUCCESS(result.summary()))
            return
        self.stdout.write(result.summary())
        raise CommandError(f"Audit ledger problem: {result.problem}", returncode=1)
