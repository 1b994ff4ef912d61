"""``manage.py seed_customers_scale --count N``: bulk benchmark customers (see customers.scale)."""

from django.core.management.base import BaseCommand, CommandError

from customers.scale import seed_customers_at_scale


class Command(BaseCommand):
    help = (
        "Bulk-create N realistic benchmark customers with phones, e-mails, platform accounts and name "
        "search tokens (no audit entries). Run seed_demo first for the demo sales reps."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True, help="How many customers to add.")
        parser.add_argument(
            "--batch", type=int, default=5000, help="Customers per transaction (default 5000)."
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed (default: from the largest id)."
        )

    def handle(self, *args, count, batch, seed, **options):
        if count < 1:
            raise CommandError("--count must be 1 or more.")
        if batch < 1:
            raise CommandError("--batch must be 1 or more.")
        result = seed_customers_at_scale(count=count, batch=batch, stdout=self.stdout, seed=seed)
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.customers:,} customers, {result.phones:,} phones, {result.emails:,} e-mails, "
                f"{result.platform_accounts:,} platform accounts, {result.tags:,} tag links, "
                f"{result.tokens:,} search tokens in {result.seconds:,.1f} s "
                f"({result.rate:,.0f} customers/s; seconds per part: {result.timings})"
            )
        )
