"""``manage.py seed_orders_scale --count N``: bulk benchmark orders (see sales.scale)."""

from django.core.management.base import BaseCommand, CommandError

from sales.scale import seed_orders_at_scale


class Command(BaseCommand):
    help = (
        "Bulk-create N realistic benchmark orders (one to three lines each) over the existing customers "
        "(no audit entries, payments or stock moves). Run seed_customers_scale first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True, help="How many orders to add.")
        parser.add_argument(
            "--batch", type=int, default=10_000, help="Orders per transaction (default 10000)."
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed (default: from the largest order id)."
        )
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help="Keep every index during the load (default: rebuild two after 200,000 orders or more).",
        )

    def handle(self, *args, count, batch, seed, keep_indexes, **options):
        if count < 1:
            raise CommandError("--count must be 1 or more.")
        if batch < 1:
            raise CommandError("--batch must be 1 or more.")
        try:
            result = seed_orders_at_scale(
                count=count,
                batch=batch,
                stdout=self.stdout,
                seed=seed,
                defer_indexes=False if keep_indexes else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.orders:,} orders, {result.lines:,} lines for {result.customers_with_orders:,} "
                f"customers ({result.products_created:,} products created) in {result.seconds:,.1f} s "
                f"({result.rate:,.0f} orders/s; seconds per part: {result.timings})"
            )
        )
