"""Reusable validators for contact data (phones, e-mail addresses), with translated messages.

Phones are checked after removing spaces, dashes, dots and brackets, and a +86/0086 prefix on a
mainland number is accepted (``crm.core.crypto.normalize_phone`` stores them without it)::

    mobile = forms.CharField(validators=[validate_mobile])
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from .crypto import normalize_phone

MAINLAND_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
INTERNATIONAL_RE = re.compile(r"^\+\d{6,15}$")
# Mainland landline: area code 0xx or 0xxx and a 7 or 8 digit number (dashes already removed).
MAINLAND_LANDLINE_RE = re.compile(r"^0\d{2,3}\d{7,8}$")


def is_mobile(value: str) -> bool:
    """True for a mainland mobile (1[3-9] and 9 digits) or an international +<6-15 digits>."""
    text = normalize_phone(value)
    return bool(MAINLAND_MOBILE_RE.match(text) or INTERNATIONAL_RE.match(text))


def validate_mobile(value: str) -> None:
    """A mobile number: mainland 1[3-9]xxxxxxxxx, or international with a leading + (6-15 digits)."""
    if not value:
        return
    if not is_mobile(value):
        raise ValidationError(
            _(
                "Enter a valid mobile number: 11 digits starting with 13-19 for mainland China, "
                "or + and 6 to 15 digits for other countries."
            ),
            code="invalid_mobile",
            params={"value": value},
        )


def validate_phone(value: str) -> None:
    """A mobile number (as ``validate_mobile``) or a mainland landline such as 021-12345678."""
    if not value:
        return
    text = normalize_phone(value)
    if not (is_mobile(value) or MAINLAND_LANDLINE_RE.match(text)):
        raise ValidationError(
            _(
                "Enter a valid phone number: a mobile number, a landline with its area code "
                "(for example 021-12345678), or + and 6 to 15 digits for other countries."
            ),
            code="invalid_phone",
            params={"value": value},
        )


_email_validator = EmailValidator(message=_("Enter a valid e-mail address, for example name@example.com."))


def validate_email(value: str) -> None:
    """An e-mail address (Django's rules) with a translated message; blank is allowed."""
    if not value:
        return
    _email_validator(value.strip())
