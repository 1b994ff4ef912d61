"""sales.services.pricing: the arithmetic every quote and order uses."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from sales.services.pricing import (
    LineInput,
    clean_discount_percent,
    clean_price,
    clean_quantity,
    compute_totals,
)

D = Decimal


def test_totals_add_up_with_line_and_order_discounts():
    totals = compute_totals(
        [
            LineInput(quantity=D("3"), unit_price=D("99.90"), discount_rate=D("0.10"), tax_rate=D("0.13")),
            LineInput(quantity=D("1"), unit_price=D("0.01"), tax_rate=D("0.13")),
            LineInput(quantity=D("2.5"), unit_price=D("40.00"), discount_rate=D("0"), tax_rate=D("0.06")),
        ],
        order_discount_rate=D("0.05"),
        shipping=D("12.00"),
    )
    assert totals.goods == D("399.71")
    assert sum(line.line_total for line in totals.lines) + totals.shipping == totals.total
    assert totals.goods - totals.discount + totals.shipping == totals.total
    assert all(line.net + line.tax == line.line_total for line in totals.lines)
    # 269.73 + 0.01 + 100.00 = 369.74 gross; 5% order discount = 18.49
    assert totals.total == D("369.74") - D("18.49") + D("12.00")
    assert totals.max_discount_rate == D("0.1450")


def test_tax_is_extracted_from_tax_inclusive_price():
    totals = compute_totals([LineInput(quantity=D("1"), unit_price=D("113.00"), tax_rate=D("0.13"))])
    assert totals.tax == D("13.00")
    assert totals.lines[0].net == D("100.00")


def test_no_lines_is_zero():
    totals = compute_totals([], order_discount_rate=D("0.5"))
    assert totals.total == 0
    assert totals.discount == 0


@pytest.mark.parametrize("value", ["-1", "0", "1.0001", "abc", ""])
def test_bad_quantities_are_refused(value):
    with pytest.raises(ValidationError):
        clean_quantity(value)


@pytest.mark.parametrize("value", ["-0.01", "1.005", "x", "1e20"])
def test_bad_prices_are_refused(value):
    with pytest.raises(ValidationError):
        clean_price(value)


def test_price_with_three_decimals_names_the_value():
    with pytest.raises(ValidationError) as caught:
        clean_price("9.999")
    assert "9.999" in caught.value.messages[0]


@pytest.mark.parametrize(("value", "expected"), [("0", D("0")), ("12.5", D("0.1250")), ("100", D("1"))])
def test_discount_percent_becomes_a_fraction(value, expected):
    assert clean_discount_percent(value) == expected


@pytest.mark.parametrize("value", ["100.01", "-5", "1.234"])
def test_bad_discounts_are_refused(value):
    with pytest.raises(ValidationError):
        clean_discount_percent(value)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        compute_totals([LineInput(quantity=1.5, unit_price=D("1"))])
