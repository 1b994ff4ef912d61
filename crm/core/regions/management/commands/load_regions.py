from django.core.management.base import BaseCommand
from django.db import transaction

from crm.core.regions import selectors
from crm.core.regions.loader import DATA_FILE, load_regions
from crm.core.regions.models import Region


class Command(BaseCommand):
    help = "Load or update the region table from crm/core/regions/data/regions.csv (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")
        parser.add_argument("--file", default=str(DATA_FILE), help="CSV file (default: the bundled one)")

    def handle(self, *args, **options):
        from pathlib import Path

        with transaction.atomic(using=options["database"]):
            result = load_regions(Region, using=options["database"], path=Path(options["file"]))
        selectors.invalidate()
        self.stdout.write(
            self.style.SUCCESS(
                f"Regions: {result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
                f"{result.obsolete} obsolete (kept)."
            )
        )
