"""``manage.py verify_quote_pdf FILE [FILE ...]``: is each quote PDF genuine and unchanged? (R7.1.4)

Prints one line per file (status, quote number and revision, signing key, digest). Exit code 0 when
every file is genuine, 1 otherwise, so scripts can rely on it.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sales.services.quote_documents import MAX_PDF_BYTES, verify_quote_pdf


class Command(BaseCommand):
    help = (
        "Verify quote PDFs issued by the CRM: the Ed25519 signature, the signing key (trusted?) and "
        "the SHA-256 of the content. Exit code 1 if any file is not genuine."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="PDF files to check")

    def handle(self, *args, files=(), **options):
        failed = 0
        for name in files:
            path = Path(name)
            try:
                with path.open("rb") as fh:
                    data = fh.read(MAX_PDF_BYTES + 1)
            except OSError as exc:
                self.stderr.write(f"{name}: cannot read ({exc.strerror})")
                failed += 1
                continue
            result = verify_quote_pdf(data)
            facts = []
            if result.number:
                facts.append(f"quote {result.number} revision {result.revision}")
            if result.key_id:
                facts.append(f"key {result.key_id[:16]}")
            if result.signed_at:
                facts.append(f"signed {result.signed_at}")
            if result.digest:
                facts.append(f"sha256 {result.digest}")
            if result.ok and result.is_current is False:
                facts.append(f"superseded: the quote is now at revision {result.quote.revision}")
            line = f"{name}: {result.status.upper()}" + (f" ({'; '.join(facts)})" if facts else "")
            if result.ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                failed += 1
                self.stdout.write(self.style.ERROR(line))
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) failed verification", returncode=1)
