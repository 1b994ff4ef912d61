"""``manage.py rebuild_stock [--check]``: compare every stock level with its moves and active
reservations; without ``--check`` set the differing levels back to them (audited).

Exit status 1 with ``--check`` when a level differs (for monitoring and after a restore)."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Check (or rebuild) stock levels from the stock moves and active reservations."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Only report differences; change nothing.")

    def handle(self, *args, check: bool = False, **options):
        from sales.services.inventory import stock_check, stock_rebuild

        problems = stock_check() if check else stock_rebuild(actor=None)
        for p in problems:
            self.stdout.write(
                f"product {p['product_id']} warehouse {p['warehouse_id']}: on hand {p['on_hand']} "
                f"(moves say {p['moves']}), reserved {p['reserved']} (reservations say {p['reservations']})"
            )
        if not problems:
            self.stdout.write("All stock levels match their moves and reservations.")
        elif check:
            raise CommandError(f"{len(problems)} stock level(s) differ from their moves.")
        else:
            self.stdout.write(f"{len(problems)} stock level(s) rebuilt.")
