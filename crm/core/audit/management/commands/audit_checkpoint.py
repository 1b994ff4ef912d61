from django.core.management.base import BaseCommand, CommandError

from crm.core.audit import signing
from crm.core.audit.services import audit_checkpoint


class Command(BaseCommand):
    help = "Sign the hash of the latest audit entry with the audit key (a checkpoint)."

    def handle(self, *args, **options):
        if signing.load_private_key() is None:
            raise CommandError(f"No audit signing key at {signing.key_path()}: run create_audit_key first.")
        cp = audit_checkpoint()
        if cp is None:
            raise CommandError("No checkpoint written: the ledger is empty or does not verify (see the log).")
        message = f"Checkpoint at seq {cp.upto_seq} signed by key {cp.key_id[:16]}"
        self.stdout.write(self.style.SUCCESS(message))
