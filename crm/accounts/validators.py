import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CharacterClassValidator:
    """Require letters mixed with at least one digit or symbol (e.g. "Crm-2026-shop")."""

    def validate(self, password, user=None):
        has_letter = re.search(r"[A-Za-z]", password) is not None
        has_other = re.search(r"[^A-Za-z]", password) is not None
        if not (has_letter and has_other):
            raise ValidationError(
                _("The password must mix letters with at least one digit or symbol."),
                code="password_too_simple",
            )

    def get_help_text(self):
        return _("Your password must mix letters with digits or symbols.")
