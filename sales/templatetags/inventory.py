"""Template filters of the inventory pages: ``{% load inventory %}``.

``{{ level.on_hand|quantity }}`` shows a quantity without trailing zeros (12.000 -> 12,
1.500 -> 1.5), with digit grouping in the active language.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter(name="quantity")
def quantity_filter(value) -> str:
    if value in (None, ""):
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    normalized = number.normalize()
    places = max(0, -normalized.as_tuple().exponent) if isinstance(normalized.as_tuple().exponent, int) else 0
    return number_format(number, decimal_pos=min(places, 3), use_l10n=True, force_grouping=True)


@register.filter(name="percent")
def percent_filter(value) -> str:
    """A stored fraction as a percentage: 0.1300 -> 13%, 0.0650 -> 6.5%."""
    if value in (None, ""):
        return ""
    try:
        number = (Decimal(str(value)) * 100).normalize()
    except (InvalidOperation, ValueError):
        return ""
    return f"{format(number, 'f')}%"
