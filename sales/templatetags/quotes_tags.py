"""Template filters of the quote and approval pages: ``{% load quotes_tags %}``.

``{{ quote.status|quote_status_class }}`` and ``{{ request.status|approval_status_class }}`` give a
Bootstrap colour for the status badge; ``{{ rate|rate_percent }}`` shows a stored fraction as a
percentage (0.1250 -> 12.5%); ``{{ quantity|plain_number }}`` drops trailing zeros (2.000 -> 2).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()

QUOTE_STATUS_CLASSES = {
    "draft": "secondary",
    "pending_approval": "warning",
    "approved": "info",
    "sent": "primary",
    "accepted": "success",
    "rejected": "danger",
    "expired": "dark",
}
APPROVAL_STATUS_CLASSES = {
    "pending": "warning",
    "approved": "success",
    "rejected": "danger",
    "cancelled": "secondary",
}


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@register.filter
def quote_status_class(status) -> str:
    return QUOTE_STATUS_CLASSES.get(str(status), "secondary")


@register.filter
def approval_status_class(status) -> str:
    return APPROVAL_STATUS_CLASSES.get(str(status), "secondary")


@register.filter
def rate_percent(value) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    percent = (number * 100).quantize(Decimal("0.01")).normalize()
    return f"{percent:f}%"


@register.filter
def plain_number(value) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    return f"{number.normalize():f}"
