"""``manage.py seed_demo``: demo teams, one login per role, then every app's demo data.

Idempotent: a second run creates nothing that already exists. The platform step runs first, then
each ``DemoStep`` registered in ``crm.core.registry.registry`` in its order, each in its own
transaction.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from crm.accounts.roles import role_label
from crm.core import demo
from crm.core.registry import registry


class Command(BaseCommand):
    help = "Create demo teams, one login per role and demo business data (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=int,
            default=1,
            help="Volume multiplier for bulk demo data (1 = the small hand-made demo).",
        )
        parser.add_argument(
            "--password",
            default=demo.DEFAULT_DEMO_PASSWORD,
            help="Password of newly created demo users (default: %(default)s).",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Also set existing demo users' passwords back to --password (and reactivate them).",
        )

    def handle(self, *args, scale, password, reset_passwords, **options):
        if scale < 1:
            raise CommandError("--scale must be 1 or more.")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("The demo password is too weak: " + " ".join(exc.messages)) from exc

        result = demo.seed_platform(
            scale=scale, password=password, reset_passwords=reset_passwords, stdout=self.stdout
        )
        for step in registry.ordered_demo_steps():
            self.stdout.write(f"step {step.key} ...")
            with transaction.atomic():
                step.run(scale=scale, stdout=self.stdout)
        self._print_logins(result, password)

    def _print_logins(self, result: demo.PlatformDemoResult, password: str) -> None:
        rows = [("username", "password", "role", "name")]
        kept = False
        for login in result.logins:
            shown = password if login.password_set else "(unchanged)"
            kept = kept or not login.password_set
            rows.append((login.username, shown, str(role_label(login.role)), login.display_name))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo logins:"))
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(widths[n]) if n < 3 else cell for n, cell in enumerate(row))
            self.stdout.write("  " + line.rstrip())
            if i == 0:
                self.stdout.write("  " + "  ".join("-" * w for w in widths))
        if result.extra_reps_created:
            self.stdout.write(
                f"  + {result.extra_reps_created} bulk sales reps "
                f"({demo.EXTRA_REP_PREFIX}0001 ...), same password"
            )
        if kept:
            self.stdout.write(
                "Existing demo users kept their passwords; run with --reset-passwords to set them "
                "back to the demo password."
            )
