"""{% load money %}: ``{{ amount|money:"CNY" }}``, ``{% money amount currency %}``, ``{{ n|compact_number }}``

Empty values render as "" and bad values as "" too (a template never breaks on a bad number); the
currency defaults to settings.DEFAULT_CURRENCY and the language to the active one.
"""

from decimal import Decimal, InvalidOperation

from django import template

from crm.core.money import Money, format_money
from crm.core.money import compact_number as _compact_number

register = template.Library()


def _coerce(value):
    if value is None or value == "":
        return None
    if isinstance(value, Money | Decimal | int) and not isinstance(value, bool):
        return value
    if isinstance(value, str | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


@register.filter(name="money")
def money_filter(value, currency=None) -> str:
    value = _coerce(value)
    if value is None:
        return ""
    try:
        return format_money(value, currency or None)
    except (TypeError, ValueError):
        return ""


@register.simple_tag(name="money")
def money_tag(amount, currency=None, language=None) -> str:
    value = _coerce(amount)
    if value is None:
        return ""
    try:
        return format_money(value, currency or None, language)
    except (TypeError, ValueError):
        return ""


@register.filter(name="compact_number")
def compact_number_filter(value, language=None) -> str:
    value = _coerce(value)
    if value is None:
        return ""
    try:
        return _compact_number(value, language or None)
    except (TypeError, ValueError):
        return ""
