"""Money: Decimal amounts with a currency (CNY by default), never float.

Models::

    price = AmountField(_("price"))                 # DecimalField(max_digits=14, decimal_places=2)
    currency = CurrencyField()                      # CharField(3), default settings.DEFAULT_CURRENCY

Code::

    total = Money(Decimal("19.90"), "CNY") * 3      # Money(amount=Decimal('59.70'), currency='CNY')
    total.quantize()                                # rounded to the currency's minor unit, half up
    parse_amount("¥1,234.5")                        # Decimal('1234.5'); ValidationError on bad input
    format_money(Decimal("-1234.5"), "CNY")         # "-¥1,234.50" (zh-hans) / "-CN¥1,234.50" (en)
    compact_number(123_000_000)                     # "1.23亿" (zh-hans) / "123M" (en)

Templates: ``{% load money %}`` then ``{{ amount|money:"CNY" }}``, ``{% money amount currency %}``,
``{{ value|compact_number }}``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Currency:
    code: str
    minor_units: int
    symbol_zh: str
    symbol_en: str


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("CNY", 2, "¥", "CN¥"),
        Currency("USD", 2, "US$", "$"),
        Currency("HKD", 2, "HK$", "HK$"),
        Currency("MOP", 2, "MOP$", "MOP$"),
        Currency("TWD", 2, "NT$", "NT$"),
        Currency("EUR", 2, "€", "€"),
        Currency("GBP", 2, "£", "£"),
        Currency("JPY", 0, "JP¥", "¥"),
        Currency("KRW", 0, "₩", "₩"),
        Currency("SGD", 2, "SGD", "SGD"),
        Currency("AUD", 2, "AU$", "A$"),
        Currency("CAD", 2, "CA$", "CA$"),
    )
}


class CurrencyChoices(models.TextChoices):
    CNY = "CNY", gettext_lazy("Chinese yuan (CNY)")
    USD = "USD", gettext_lazy("US dollar (USD)")
    HKD = "HKD", gettext_lazy("Hong Kong dollar (HKD)")
    MOP = "MOP", gettext_lazy("Macao pataca (MOP)")
    TWD = "TWD", gettext_lazy("New Taiwan dollar (TWD)")
    EUR = "EUR", gettext_lazy("Euro (EUR)")
    GBP = "GBP", gettext_lazy("Pound sterling (GBP)")
    JPY = "JPY", gettext_lazy("Japanese yen (JPY)")
    KRW = "KRW", gettext_lazy("South Korean won (KRW)")
    SGD = "SGD", gettext_lazy("Singapore dollar (SGD)")
    AUD = "AUD", gettext_lazy("Australian dollar (AUD)")
    CAD = "CAD", gettext_lazy("Canadian dollar (CAD)")


def default_currency() -> str:
    """settings.DEFAULT_CURRENCY (read when called, never at import time)."""
    return getattr(settings, "DEFAULT_CURRENCY", "CNY")


def get_currency(code: str | None) -> Currency:
    code = (code or default_currency()).upper()
    try:
        return CURRENCIES[code]
    except KeyError:
        raise ValueError(f"Unknown currency {code!r}") from None


def minor_units(currency: str | None = None) -> int:
    return get_currency(currency).minor_units


def quantize(amount: Decimal | int, currency: str | None = None) -> Decimal:
    """Round to the currency's minor unit (JPY 0, CNY 2), half up: 0.125 -> 0.13, -0.125 -> -0.13."""
    amount = _to_decimal(amount)
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def _to_decimal(value) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError("Money amounts must be Decimal or int, never float (use Decimal('1.10')).")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    raise TypeError(f"Expected Decimal or int, got {type(value).__name__}.")


# Model fields --------------------------------------------------------------------------------


class AmountField(models.DecimalField):
    """DecimalField(max_digits=14, decimal_places=2): up to 999,999,999,999.99. Serialised as DecimalField."""

    def __init__(self, verbose_name=None, name=None, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(verbose_name, name, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs

    def formfield(self, **kwargs):
        from crm.core.forms import AmountFormField

        return super().formfield(**{"form_class": AmountFormField, **kwargs})


class CurrencyField(models.CharField):
    """ISO 4217 code, one of CurrencyChoices, default settings.DEFAULT_CURRENCY."""

    def __init__(self, verbose_name=None, name=None, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("choices", CurrencyChoices.choices)
        kwargs.setdefault("default", default_currency)
        if verbose_name is None:
            verbose_name = gettext_lazy("currency")
        super().__init__(verbose_name, name, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        # Adding a currency must not make a migration in every app that has a CurrencyField.
        kwargs.pop("choices", None)
        if kwargs.get("max_length") == 3:
            kwargs.pop("max_length")
        return name, path, args, kwargs


# Value object ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An exact amount in one currency. Arithmetic keeps the currency; mixing currencies is an error."""

    amount: Decimal
    currency: str = ""

    def __post_init__(self):
        object.__setattr__(self, "amount", _to_decimal(self.amount))
        object.__setattr__(self, "currency", get_currency(self.currency).code)

    @classmethod
    def zero(cls, currency: str | None = None) -> Money:
        return cls(Decimal(0), currency or default_currency())

    @classmethod
    def sum(cls, items, currency: str | None = None) -> Money:
        total = cls.zero(currency)
        for item in items:
            total += item
        return total

    def quantize(self) -> Money:
        return Money(quantize(self.amount, self.currency), self.currency)

    def _check(self, other) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"Cannot combine Money with {type(other).__name__}.")
        if other.currency != self.currency:
            raise ValueError(f"Cannot combine {self.currency} with {other.currency}.")
        return other

    def __add__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.amount + self._check(other).amount, self.currency)

    def __sub__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.amount - self._check(other).amount, self.currency)

    def __mul__(self, factor):
        if isinstance(factor, Money):
            return NotImplemented
        return Money(self.amount * _to_decimal(factor), self.currency)

    __rmul__ = __mul__

    def __truediv__(self, divisor):
        if isinstance(divisor, Money):
            return NotImplemented
        return Money(self.amount / _to_decimal(divisor), self.currency)

    def __neg__(self):
        return Money(-self.amount, self.currency)

    def __abs__(self):
        return Money(abs(self.amount), self.currency)

    def __bool__(self):
        return bool(self.amount)

    def __lt__(self, other):
        return self.amount < self._check(other).amount

    def __le__(self, other):
        return self.amount <= self._check(other).amount

    def __gt__(self, other):
        return self.amount > self._check(other).amount

    def __ge__(self, other):
        return self.amount >= self._check(other).amount

    def __str__(self):
        return format_money(self.amount, self.currency)


# Parsing --------------------------------------------------------------------------------------

_SYMBOLS = sorted(
    {s for c in CURRENCIES.values() for s in (c.symbol_zh, c.symbol_en, c.code)} | {"RMB", "元", "圆", "¥"},
    key=len,
    reverse=True,
)
_NUMBER_RE = re.compile(r"^(?P<sign>[-+]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?:\.(?P<frac>\d+))?$")


def parse_amount(text, currency: str | None = None) -> Decimal:
    """Decimal from user input: "1,234.50", "¥1234.5", "-12", full-width digits, "1234.5元".

    Raises ValidationError (translated) for non-numbers, misplaced thousands separators, too many
    digits, or more decimals than the currency allows ("12.345" for CNY, "12.5" for JPY).
    """
    if isinstance(text, Decimal | int) and not isinstance(text, bool):
        value = Decimal(text)
        return _check_amount(value, value.as_tuple().exponent, currency)
    if not isinstance(text, str):
        raise ValidationError(_("Enter a valid amount."), code="invalid")
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "").replace("\u00a0", "")
    sign = ""
    if cleaned[:1] in "-+" and cleaned:
        sign, cleaned = cleaned[0], cleaned[1:]
    for symbol in _SYMBOLS:
        if cleaned.upper().startswith(symbol.upper()):
            cleaned = cleaned[len(symbol) :]
            break
    for symbol in _SYMBOLS:
        if cleaned.upper().endswith(symbol.upper()):
            cleaned = cleaned[: -len(symbol)]
            break
    match = _NUMBER_RE.match(sign + cleaned) if cleaned else None
    if not match or not (match["int"] or match["frac"]):
        raise ValidationError(_("Enter a valid amount."), code="invalid")
    digits = (match["int"] or "0").replace(",", "")
    frac = match["frac"] or ""
    try:
        value = Decimal(f"{match['sign']}{digits}.{frac}" if frac else f"{match['sign']}{digits}")
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        raise ValidationError(_("Enter a valid amount."), code="invalid") from None
    return _check_amount(value, -len(frac), currency)


def _check_amount(value: Decimal, exponent, currency: str | None) -> Decimal:
    if not value.is_finite():
        raise ValidationError(_("Enter a valid amount."), code="invalid")
    places = minor_units(currency)
    too_precise = isinstance(exponent, int) and -exponent > places
    if too_precise and value != value.quantize(Decimal(1).scaleb(-places)):
        if places == 0:
            message = _("Enter a whole amount: %(currency)s has no decimal places.")
        else:
            message = ngettext(
                "Enter an amount with at most %(places)d decimal place.",
                "Enter an amount with at most %(places)d decimal places.",
                places,
            )
        params = {"places": places, "currency": get_currency(currency).code}
        raise ValidationError(message, code="max_decimal_places", params=params)
    if abs(value) >= Decimal(10) ** 12:
        raise ValidationError(_("Enter an amount below one trillion."), code="max_digits")
    return value


# Formatting -----------------------------------------------------------------------------------


def _is_chinese(language: str | None) -> bool:
    return (language or get_language() or settings.LANGUAGE_CODE).lower().startswith("zh")


def format_money(amount, currency: str | None = None, language: str | None = None) -> str:
    """ "¥1,234.50" / "US$1,234.50" in Chinese; "CN¥1,234.50" / "$1,234.50" in English; "-¥1,234.50".

    ``amount`` is a Decimal, an int or a Money (whose currency wins). Uses the active language.
    """
    if isinstance(amount, Money):
        amount, currency = amount.amount, amount.currency
    info = get_currency(currency)
    value = quantize(_to_decimal(amount), info.code)
    symbol = info.symbol_zh if _is_chinese(language) else info.symbol_en
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.{info.minor_units}f}"


_UNITS_ZH = ((Decimal(10) ** 12, "万亿"), (Decimal(10) ** 8, "亿"), (Decimal(10) ** 4, "万"))
_UNITS_EN = (
    (Decimal(10) ** 12, "T"),
    (Decimal(10) ** 9, "B"),
    (Decimal(10) ** 6, "M"),
    (Decimal(10) ** 3, "K"),
)


def _three_significant(value: Decimal) -> Decimal:
    """Round to 3 significant digits but never round away integer digits: 12.345 -> 12.3, 1234.5 -> 1235."""
    integer_digits = len(str(int(abs(value)))) if abs(value) >= 1 else 1
    places = max(0, 3 - integer_digits)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _plain(value: Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def compact_number(value, language: str | None = None) -> str:
    """Short numbers for dashboards: zh "1.23万", "4.5亿"; en "12.3K", "450M". Floats are accepted here."""
    if isinstance(value, Money):
        value = value.amount
    if isinstance(value, float):
        value = Decimal(repr(value))
    value = _to_decimal(value)
    units = _UNITS_ZH if _is_chinese(language) else _UNITS_EN
    magnitude = abs(value)
    # Smallest unit first, so that rounding up (9999.6万 -> 10000万) can move to the next unit.
    for index in range(len(units) - 1, -1, -1):
        size, suffix = units[index]
        if magnitude < size:
            break
        if index > 0 and magnitude >= units[index - 1][0]:
            continue
        scaled = _three_significant(value / size)
        if index > 0 and abs(scaled) * size >= units[index - 1][0]:
            size, suffix = units[index - 1]
            scaled = _three_significant(value / size)
        return f"{_plain(scaled)}{suffix}"
    rounded = _three_significant(value)
    if abs(rounded) >= units[-1][0]:
        size, suffix = units[-1]
        return f"{_plain(_three_significant(value / size))}{suffix}"
    return _plain(rounded)
