"""Money: Decimal arithmetic, parsing, formatting per language, compact numbers (R5.2.1, R5.5.1, R5.6.1)."""

from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation

from crm.core.forms import AmountFormField
from crm.core.money import (
    AmountField,
    CurrencyChoices,
    CurrencyField,
    Money,
    compact_number,
    default_currency,
    format_money,
    parse_amount,
    quantize,
)

D = Decimal


# Money value object ---------------------------------------------------------------------------


def test_arithmetic_keeps_currency_and_exactness():
    """R5.2.1: amounts are exact Decimals; 0.1 + 0.2 is 0.3."""
    a = Money(D("0.10"), "CNY")
    b = Money(D("0.20"), "CNY")
    assert a + b == Money(D("0.30"), "CNY")
    assert b - a == Money(D("0.10"), "CNY")
    assert a * 3 == Money(D("0.30"), "CNY")
    assert 3 * a == Money(D("0.30"), "CNY")
    assert a * D("1.5") == Money(D("0.150"), "CNY")
    assert Money(D("10"), "CNY") / 4 == Money(D("2.5"), "CNY")
    assert -a == Money(D("-0.10"), "CNY")
    assert abs(Money(D("-2"), "CNY")) == Money(D("2"), "CNY")
    assert Money.sum([a, b, a], "CNY") == Money(D("0.40"), "CNY")
    assert Money(7, "usd") == Money(D("7"), "USD")  # int accepted, code normalised
    assert not Money.zero()
    assert Money.zero().currency == "CNY"


@pytest.mark.parametrize("bad", [0.1, 1.0, True])
def test_float_is_rejected(bad):
    """R5.2.1: money never goes through float."""
    with pytest.raises(TypeError):
        Money(bad, "CNY")
    with pytest.raises(TypeError):
        Money(D("1"), "CNY") * bad
    with pytest.raises(TypeError):
        format_money(bad, "CNY")


def test_mixed_currencies_are_rejected():
    cny, usd = Money(D("1"), "CNY"), Money(D("1"), "USD")
    with pytest.raises(ValueError, match="CNY"):
        cny + usd
    with pytest.raises(ValueError, match="Cannot combine"):
        cny - usd
    with pytest.raises(ValueError, match="Cannot combine"):
        cny < usd  # noqa: B015
    assert cny != usd  # equality never raises
    with pytest.raises(TypeError):
        cny + D("1")
    with pytest.raises(TypeError):
        cny * cny
    with pytest.raises(ValueError, match="Unknown currency"):
        Money(D("1"), "XYZ")


def test_comparison_within_currency():
    small, big = Money(D("1.00"), "CNY"), Money(D("2"), "CNY")
    assert small < big
    assert big > small
    assert small <= small
    assert big >= small
    assert Money(D("1.0"), "CNY") == Money(D("1.00"), "CNY")
    assert sorted([big, small]) == [small, big]
    assert len({Money(D("1"), "CNY"), Money(D("1"), "CNY")}) == 1


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "CNY", "0.13"),
        ("0.124", "CNY", "0.12"),
        ("-0.125", "CNY", "-0.13"),
        ("2.675", "USD", "2.68"),  # float would give 2.67
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),  # half up, not banker's rounding
        ("-2.5", "JPY", "-3"),
    ],
)
def test_quantize_half_up_to_minor_unit(amount, currency, expected):
    assert quantize(D(amount), currency) == D(expected)
    assert str(Money(D(amount), currency).quantize().amount) == expected


# Parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234.50", "1234.50"),
        ("¥1234.5", "1234.5"),
        ("￥1,234.5", "1234.5"),  # full-width yen sign
        ("  1234  ", "1234"),
        ("-12.30", "-12.30"),
        ("-¥12", "-12"),
        ("CN¥8", "8"),
        ("US$1,000,000.00", "1000000.00"),
        ("1234.5元", "1234.5"),
        ("RMB 99", "99"),
        ("\uff11\uff12\uff13.\uff14", "123.4"),  # full-width digits
        (".5", "0.5"),
        ("12.340", "12.340"),  # a trailing zero is not a third decimal
        (D("3.1"), "3.1"),
        (42, "42"),
    ],
)
def test_parse_amount_good(text, expected):
    """R8.2: equivalence classes of amounts people type."""
    assert parse_amount(text) == D(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("12.345", "max_decimal_places"),  # price with three decimals
        ("0.001", "max_decimal_places"),
        (D("1.005"), "max_decimal_places"),
        ("abc", "invalid"),
        ("", "invalid"),
        ("¥", "invalid"),
        ("1.2.3", "invalid"),
        ("12,34", "invalid"),
        ("1,2345", "invalid"),
        ("1e5", "invalid"),
        ("NaN", "invalid"),
        ("--1", "invalid"),
        ("1.", "invalid"),
        (1.5, "invalid"),
        (None, "invalid"),
        ("1000000000000", "max_digits"),
    ],
)
def test_parse_amount_bad(text, code):
    """R8.2: boundary values and error guessing; errors are translated ValidationErrors."""
    with pytest.raises(ValidationError) as exc:
        parse_amount(text)
    assert exc.value.code == code


def test_parse_amount_messages_and_currency_precision():
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        parse_amount("12.345", currency="CNY")
    assert exc.value.messages == ["Enter an amount with at most 2 decimal places."]
    assert parse_amount("1,500", currency="JPY") == D("1500")
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        parse_amount("1500.5", currency="JPY")
    assert exc.value.messages == ["Enter a whole amount: JPY has no decimal places."]
    assert parse_amount("999999999999.99") == D("999999999999.99")  # the largest AmountField value


# Formatting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("1234.5", "CNY", "zh-hans", "¥1,234.50"),
        ("1234.5", "USD", "zh-hans", "US$1,234.50"),
        ("1234.5", "CNY", "en", "CN¥1,234.50"),
        ("1234.5", "USD", "en", "$1,234.50"),
        ("-1234.5", "CNY", "zh-hans", "-¥1,234.50"),
        ("-1234.5", "USD", "en", "-$1,234.50"),
        ("0", "CNY", "zh-hans", "¥0.00"),
        ("1234567.891", "CNY", "zh-hans", "¥1,234,567.89"),
        ("0.005", "CNY", "en", "CN¥0.01"),
        ("1500.5", "JPY", "en", "¥1,501"),
        ("1500", "JPY", "zh-hans", "JP¥1,500"),
        ("10", "HKD", "en", "HK$10.00"),
        ("10", "EUR", "zh-hans", "€10.00"),
    ],
)
def test_format_money(amount, currency, language, expected):
    """R5.6.1: money is shown the way each language writes it."""
    assert format_money(D(amount), currency, language) == expected


def test_format_money_uses_active_language_and_default_currency():
    with translation.override("en"):
        assert format_money(D("5")) == "CN¥5.00"
        assert str(Money(D("5"), "USD")) == "$5.00"
    with translation.override("zh-hans"):
        assert format_money(D("5")) == "¥5.00"
        assert format_money(Money(D("5"), "USD"), "CNY") == "US$5.00"  # a Money's own currency wins
    with override_settings(DEFAULT_CURRENCY="USD"), translation.override("en"):
        assert format_money(D("5")) == "$5.00"
        assert default_currency() == "USD"


def test_money_template_filter_and_tag():
    template = Template(
        '{% load money %}{{ a|money:"CNY" }}|{{ a|money:"USD" }}|{% money a "CNY" %}|{{ a|money }}|'
        "{{ none|money }}|{{ junk|money }}|{{ big|compact_number }}"
    )
    context = Context({"a": D("-1234.5"), "none": None, "junk": "abc", "big": 450_000_000})
    with translation.override("zh-hans"):
        assert template.render(context) == "-¥1,234.50|-US$1,234.50|-¥1,234.50|-¥1,234.50|||4.5亿"
    with translation.override("en"):
        assert template.render(context) == "-CN¥1,234.50|-$1,234.50|-CN¥1,234.50|-CN¥1,234.50|||450M"


# Compact numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (0, "0", "0"),
        (999, "999", "999"),
        (1234, "1234", "1.23K"),
        (12_300, "1.23万", "12.3K"),
        (123_456, "12.3万", "123K"),
        (1_234_567, "123万", "1.23M"),
        (12_345_678, "1235万", "12.3M"),
        (450_000_000, "4.5亿", "450M"),
        (99_996_000, "1亿", "100M"),  # rounding up moves to the next unit
        (999_999, "100万", "1M"),
        (1_500_000_000_000, "1.5万亿", "1.5T"),
        (-12_300, "-1.23万", "-12.3K"),
        (D("5.678"), "5.68", "5.68"),
        (2.5e6, "250万", "2.5M"),  # dashboards may hand in floats
    ],
)
def test_compact_number(value, zh, en):
    """R5.5.1: large numbers on dashboards."""
    assert compact_number(value, "zh-hans") == zh
    assert compact_number(value, "en") == en


# Model and form fields ------------------------------------------------------------------------


def test_amount_field_defaults_and_form_field():
    field = AmountField("price")
    field.set_attributes_from_name("price")
    assert (field.max_digits, field.decimal_places, field.verbose_name) == (14, 2, "price")
    _name, path, _args, kwargs = field.deconstruct()
    assert path == "django.db.models.DecimalField"
    assert kwargs["max_digits"] == 14
    form_field = field.formfield()
    assert isinstance(form_field, AmountFormField)
    assert form_field.clean("¥1,234.50") == D("1234.50")
    with pytest.raises(ValidationError):
        form_field.clean("12.345")


def test_currency_field_defaults():
    field = CurrencyField()
    field.set_attributes_from_name("currency")
    assert field.max_length == 3
    assert field.get_default() == "CNY"
    assert ("JPY", CurrencyChoices.JPY.label) in field.choices
    _name, path, _args, kwargs = field.deconstruct()
    assert path == "crm.core.money.CurrencyField"
    assert "choices" not in kwargs  # adding a currency makes no migration elsewhere
    with override_settings(DEFAULT_CURRENCY="HKD"):
        assert field.get_default() == "HKD"
    assert isinstance(field, models.CharField)


class PriceDemoForm(forms.Form):
    price = AmountFormField()
    yen = AmountFormField(currency="JPY", required=False)


def test_amount_form_field():
    form = PriceDemoForm(data={"price": "¥1,234.5", "yen": "1,500"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"price": D("1234.5"), "yen": D("1500")}
    with translation.override("en"):
        form = PriceDemoForm(data={"price": "12.345", "yen": "1.5"})
        assert not form.is_valid()
        assert form.errors["price"] == ["Enter an amount with at most 2 decimal places."]
        assert form.errors["yen"] == ["Enter a whole amount: JPY has no decimal places."]
        form = PriceDemoForm(data={"price": "abc"})
        assert form.errors["price"] == ["Enter a valid amount."]
        assert PriceDemoForm(data={"price": ""}).errors["price"] == ["This field is required."]
    assert 'inputmode="decimal"' in str(PriceDemoForm()["price"])
    assert 'type="text"' in str(PriceDemoForm()["price"])
