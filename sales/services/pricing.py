"""The one place that turns lines into amounts, for quotes and orders (R5.2.1).

Prices are tax-inclusive (含税价), as Chinese shops quote them. For each line::

    gross      = quantity x unit_price x (1 - line discount)      rounded to 0.01, half up
    after the order discount, shared across lines in proportion to gross (the last line takes
    the rounding remainder, so the lines always add up to the document exactly)
    line_total = gross - its share of the order discount
    tax        = line_total - line_total / (1 + tax rate)           rounded to 0.01
    net        = line_total - tax

Document: goods = sum(gross), discount = sum(quantity x unit_price) - sum(line_total),
tax = sum(tax), total = sum(line_total) + shipping. Everything is Decimal; floats are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CENT = Decimal("0.01")
ZERO = Decimal("0")
ONE = Decimal("1")
MAX_QUANTITY = Decimal("9999999999.999")
MAX_AMOUNT = Decimal("999999999999.99")


def _decimal(value, message: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError("Amounts must be Decimal or str, never float")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(message, code="invalid") from None
    if not result.is_finite():
        raise ValidationError(message, code="invalid")
    return result


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def clean_quantity(value) -> Decimal:
    """A quantity: positive, at most three decimals. Raises a translated ValidationError."""
    quantity = _decimal(value, _("Enter a quantity as a number."))
    if quantity <= 0:
        raise ValidationError(_("The quantity must be greater than zero."), code="quantity_not_positive")
    if _places(quantity) > 3:
        raise ValidationError(_("A quantity has at most three decimal places."), code="quantity_places")
    if quantity > MAX_QUANTITY:
        raise ValidationError(_("The quantity is too large."), code="quantity_too_large")
    return quantity


def clean_price(value, *, label: str | None = None) -> Decimal:
    """A price or amount: not negative, at most two decimals (fen)."""
    price = _decimal(value, _("Enter an amount as a number."))
    if price < 0:
        raise ValidationError(_("An amount cannot be negative."), code="amount_negative")
    if _places(price) > 2:
        raise ValidationError(
            _("An amount has at most two decimal places (fen): %(value)s") % {"value": value},
            code="amount_places",
        )
    if price > MAX_AMOUNT:
        raise ValidationError(_("The amount is too large."), code="amount_too_large")
    return price


def clean_discount_percent(value) -> Decimal:
    """A discount typed as a percentage (0 to 100, two decimals) -> the stored fraction (0 to 1)."""
    percent = _decimal(value if value not in (None, "") else "0", _("Enter a discount as a number."))
    if percent < 0:
        raise ValidationError(_("A discount cannot be negative."), code="discount_negative")
    if percent > 100:
        raise ValidationError(_("A discount cannot be more than 100%."), code="discount_over_100")
    if _places(percent) > 2:
        raise ValidationError(_("A discount has at most two decimal places."), code="discount_places")
    return (percent / 100).quantize(Decimal("0.0001"))


def clean_rate(value) -> Decimal:
    """A stored fraction 0..1 (discount or tax rate)."""
    rate = _decimal(value, _("Enter a rate as a number."))
    if rate < 0 or rate > 1:
        raise ValidationError(_("A rate must be between 0% and 100%."), code="rate_out_of_range")
    return rate


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    discount_rate: Decimal = ZERO
    tax_rate: Decimal = ZERO


@dataclass
class LineAmounts:
    list_amount: Decimal  # quantity x unit_price, before any discount
    gross: Decimal  # after the line discount
    order_discount_share: Decimal
    line_total: Decimal
    tax: Decimal
    net: Decimal


@dataclass
class Totals:
    lines: list[LineAmounts] = field(default_factory=list)
    goods: Decimal = ZERO  # sum of list amounts (before discounts)
    discount: Decimal = ZERO  # line discounts + order discount
    tax: Decimal = ZERO
    shipping: Decimal = ZERO
    total: Decimal = ZERO
    max_discount_rate: Decimal = ZERO  # the largest effective discount any line got, 0..1


def compute_totals(
    lines: Sequence[LineInput], *, order_discount_rate: Decimal = ZERO, shipping: Decimal = ZERO
) -> Totals:
    order_discount_rate = clean_rate(order_discount_rate)
    shipping = clean_price(shipping)
    result = Totals(shipping=shipping)
    grosses = []
    for line in lines:
        quantity = clean_quantity(line.quantity)
        unit_price = clean_price(line.unit_price)
        discount = clean_rate(line.discount_rate)
        clean_rate(line.tax_rate)
        list_amount = money(quantity * unit_price)
        grosses.append((list_amount, money(list_amount * (ONE - discount))))
    total_gross = sum((g for _l, g in grosses), ZERO)
    order_discount = money(total_gross * order_discount_rate)
    remaining = order_discount
    for index, (line, (list_amount, gross)) in enumerate(zip(lines, grosses, strict=True)):
        if index == len(grosses) - 1:
            share = remaining
        else:
            share = money(order_discount * gross / total_gross) if total_gross else ZERO
            remaining -= share
        line_total = gross - share
        tax = money(line_total - line_total / (ONE + line.tax_rate)) if line.tax_rate else ZERO
        result.lines.append(
            LineAmounts(
                list_amount=list_amount,
                gross=gross,
                order_discount_share=share,
                line_total=line_total,
                tax=tax,
                net=line_total - tax,
            )
        )
        if list_amount:
            effective = ONE - line_total / list_amount
            result.max_discount_rate = max(result.max_discount_rate, effective.quantize(Decimal("0.0001")))
    result.goods = sum((line.list_amount for line in result.lines), ZERO)
    lines_total = sum((line.line_total for line in result.lines), ZERO)
    result.discount = result.goods - lines_total
    result.tax = sum((line.tax for line in result.lines), ZERO)
    result.total = lines_total + shipping
    return result
