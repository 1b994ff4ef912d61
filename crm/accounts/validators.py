import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class CharacterClassValidator:
    """Require letters and digits (and, by default, at least 2 character classes of 4)."""

    def __init__(self, min_classes: int = 2):
        self.min_classes = min_classes

    def _classes(self, password: str) -> int:
        patterns = (r"[a-z]", r"[A-Z]", r"\d", r"[^a-zA-Z\d]")
        return sum(1 for p in patterns if re.search(p, password))

    def validate(self, password, user=None):
        if self._classes(password) < self.min_classes:
            raise ValidationError(
                ngettext(
                    "The password must mix at least %(count)d kind of character "
                    "(lower case, upper case, digits, symbols).",
                    "The password must mix at least %(count)d kinds of characters "
                    "(lower case, upper case, digits, symbols).",
                    self.min_classes,
                ),
                code="password_too_simple",
                params={"count": self.min_classes},
            )

    def get_help_text(self):
        return _("Your password must mix letters with digits or symbols.")
