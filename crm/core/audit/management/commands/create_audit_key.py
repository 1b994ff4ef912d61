from django.core.management.base import BaseCommand, CommandError

from crm.core.audit import signing


class Command(BaseCommand):
    help = (
        "Create the Ed25519 key that signs audit checkpoints, at settings.AUDIT_SIGNING_KEY_PATH "
        "(mode 0600). With --force an existing key is replaced; its fingerprint is kept as trusted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Replace an existing key (key rotation).")

    def handle(self, *args, force=False, **options):
        path = signing.key_path()
        try:
            key = signing.write_private_key(force=force, path=path)
        except signing.KeyExistsError as exc:
            raise CommandError(f"{path} already exists; use --force to replace it (key rotation).") from exc
        self.stdout.write(self.style.SUCCESS(f"Wrote {path}"))
        self.stdout.write(f"Key ID (SHA-256 of the public key): {signing.fingerprint(key.public_key())}")
        self.stdout.write(signing.public_pem(key.public_key()))
