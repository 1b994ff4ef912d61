"""Turning the rows of an order export into orders: cells -> values with per-cell errors, and
consecutive rows with the same order number -> one order with several lines.

Parsing needs no database except the region tree (cached); products are looked up per batch by
the writer. Each error names the row number in the file, the column title, the value and the
reason, as in the customer import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext

from crm.core import crypto
from crm.core.validators import validate_phone
from customers.services import imports as customer_imports
from sales.models import Channel, OrderStatus
from sales.services import pricing

from .addresses import RegionMatcher
from .fields import FIELDS, STATUS_WORDS, channel_lookup, status_lookup

RowError = customer_imports.RowError
cell_text = customer_imports.cell_text

MAX_ORDER_NUMBER = 64
MAX_ACCOUNT = 128
MAX_NAME = 200
MAX_RECIPIENT = 100
MAX_STREET = 300
MAX_SKU = 64
MAX_PRODUCT_NAME = 200
MAX_NOTES = 5000
MAX_PLATFORM_STATUS = 50
FINGERPRINT_PURPOSE = "order-import"

_DATETIME_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.\d+)?)?\s*秒?)?$"
)
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$")
_TEXT_FORMULA = re.compile(r'^=\s*"(.*)"$')
_FOUR = Decimal("0.0001")


def clean_text(value) -> str:
    """A cell as text, without the ="..." or leading apostrophe that exports use to keep digits."""
    text = cell_text(value)
    found = _TEXT_FORMULA.match(text)
    if found:
        text = found.group(1).strip()
    if text.startswith("'"):
        text = text[1:].strip()
    return text


@dataclass
class LineRow:
    row: int
    sku: str
    sku_column: str
    name: str
    quantity: Decimal
    unit_price: Decimal | None
    paid: Decimal | None
    product: object = None  # set by the writer
    discount_rate: Decimal = Decimal("0")


@dataclass
class ParsedRow:
    number: int
    order: dict = field(default_factory=dict)
    line: LineRow | None = None
    errors: list = field(default_factory=list)

    def error(self, column: str, value, reason) -> None:
        self.errors.append(RowError(self.number, column, clean_text(value)[:200], str(reason)))


@dataclass
class OrderGroup:
    """The rows of one order in the file (consecutive rows with the same channel and number)."""

    channel: str
    number: str
    row: int  # the first row
    data: dict
    lines: list[LineRow] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    errors: list = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.number

    @property
    def rows_label(self) -> str:
        return str(self.row) if len(self.rows) < 2 else f"{self.rows[0]}-{self.rows[-1]}"

    def error(self, column: str, value, reason) -> None:
        self.errors.append(RowError(self.row, column, clean_text(value)[:200], str(reason)))

    def fingerprint(self) -> str:
        """A keyed hash (HMAC with BLIND_INDEX_KEY) of everything the file says about the order:
        importing an unchanged order again is recognised without touching it."""
        data = self.data
        canonical = {
            "channel": self.channel,
            "number": self.number,
            "order": {
                key: _canonical(value) for key, value in sorted(data.items()) if value not in (None, "")
            },
            "lines": [
                [line.sku, str(line.quantity), _canonical(line.unit_price), _canonical(line.paid), line.name]
                for line in self.lines
            ],
        }
        text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return crypto.blind_index(text, purpose=FINGERPRINT_PURPOSE)


def _canonical(value):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize())
    if hasattr(value, "code"):  # a region
        return value.code
    return str(value)


def line_discount(quantity: Decimal, unit_price: Decimal, paid: Decimal) -> tuple[Decimal, Decimal]:
    """(unit price, discount rate) so that the line's amount after discount is ``paid`` exactly.

    The rate has four decimals; where no rate gives the exact amount (large amounts), the unit
    price becomes paid / quantity when that is a whole number of fen, else the closest rate is kept.
    """
    list_amount = pricing.money(quantity * unit_price)
    if paid == list_amount or not list_amount:
        return unit_price, Decimal("0")
    ideal = (Decimal("1") - paid / list_amount).quantize(_FOUR, rounding=ROUND_HALF_UP)
    for step in (0, 1, -1, 2, -2, 3, -3):
        rate = ideal + step * _FOUR
        if Decimal("0") <= rate <= Decimal("1") and pricing.money(list_amount * (1 - rate)) == paid:
            return unit_price, rate
    per_unit = paid / quantity
    if per_unit == per_unit.quantize(pricing.CENT):
        return per_unit.quantize(pricing.CENT), Decimal("0")
    return unit_price, min(max(ideal, Decimal("0")), Decimal("1"))


class RowParser:
    """Cells of one row -> order-level values and one line, with per-cell errors."""

    def __init__(self, *, headers: list[str], mapping: list[str], channel: str = ""):
        self.headers = headers
        self.columns: dict[str, int] = {}
        for index, key in enumerate(mapping):
            if key in FIELDS and key not in self.columns:
                self.columns[key] = index
        self.default_channel = channel if channel in Channel.values else ""
        self.channels = channel_lookup()
        self.statuses = status_lookup()
        self.regions = RegionMatcher()
        self._addresses: dict[str, tuple] = {}
        self.now = timezone.now()
        self.zone = timezone.get_current_timezone()

    def header(self, key: str) -> str:
        index = self.columns.get(key)
        return self.headers[index] if index is not None else ""

    def _get(self, values, key: str) -> tuple[str, str]:
        index = self.columns.get(key)
        if index is None:
            return "", ""
        return clean_text(values[index]), self.headers[index]

    def _raw(self, values, key: str):
        index = self.columns.get(key)
        return values[index] if index is not None else None

    def parse(self, number: int, values: list) -> ParsedRow:
        row = ParsedRow(number=number)
        order = row.order
        self._parse_number(row, values)
        self._parse_channel(row, values)
        for key, limit in (
            ("account_id", MAX_ACCOUNT),
            ("customer_name", MAX_NAME),
            ("recipient", MAX_RECIPIENT),
            ("notes", MAX_NOTES),
        ):
            text, column = self._get(values, key)
            if len(text) > limit:
                row.error(
                    column,
                    text[:50],
                    gettext("The text is longer than %(max)d characters.") % {"max": limit},
                )
            elif text:
                order[key] = text
        self._parse_phone(row, values)
        self._parse_address(row, values)
        self._parse_status(row, values)
        order["ordered_at"] = self._parse_time(row, values, "ordered_at")
        order["paid_at"] = self._parse_time(row, values, "paid_at")
        order["shipping"] = self._parse_amount(row, values, "shipping")
        self._parse_line(row, values)
        if not (
            order.get("account_id")
            or order.get("phone")
            or order.get("customer_name")
            or order.get("recipient")
        ):
            row.error(
                "",
                "",
                gettext("The buyer is missing: give the buyer account, phone, buyer name or recipient."),
            )
        return row

    def _parse_number(self, row: ParsedRow, values) -> None:
        raw = self._raw(values, "order_number")
        text, column = self._get(values, "order_number")
        if isinstance(raw, float) and abs(raw) >= 1e15:
            row.error(
                column,
                text,
                gettext(
                    "The order number was saved as a number and lost its last digits: format the "
                    "column as text in the spreadsheet and export it again."
                ),
            )
        elif not text:
            row.error(column, "", gettext("The order number is missing."))
        elif len(text) > MAX_ORDER_NUMBER:
            row.error(
                column,
                text[:50],
                gettext("The order number is longer than %(max)d characters.") % {"max": MAX_ORDER_NUMBER},
            )
        row.order["number"] = text

    def _parse_channel(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "channel")
        if text:
            channel = self.channels.get(text.lower())
            if channel is None:
                row.error(
                    column,
                    text,
                    gettext("Unknown channel: use 天猫, 淘宝, 京东, 抖音, 拼多多, 微信, 官网 or 线下."),
                )
                return
        else:
            channel = self.default_channel
            if not channel:
                row.error(column, "", gettext("The channel is missing."))
                return
        row.order["channel"] = channel

    def _parse_phone(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "phone")
        if not text or "*" in text:  # platforms mask phones (138****5678): nothing to match on
            return
        try:
            validate_phone(text)
        except ValidationError as exc:
            row.error(column, text, exc.messages[0])
            return
        row.order["phone"] = crypto.normalize_phone(text)

    def _parse_address(self, row: ParsedRow, values) -> None:
        postcode, postcode_column = self._get(values, "postcode")
        if postcode and not re.fullmatch(r"\d{6}", postcode):
            row.error(postcode_column, postcode, gettext("A postcode has six digits."))
            postcode = ""
        text, column = self._get(values, "address")
        if text:
            if text not in self._addresses:
                self._addresses[text] = self.regions.parse(text)
            region, street, found_postcode = self._addresses[text]
            postcode = postcode or found_postcode
            if region is None:
                street = text  # kept on the order as written; no region to file it under
        else:
            province, province_column = self._get(values, "province")
            city, city_column = self._get(values, "city")
            district, district_column = self._get(values, "district")
            street, column = self._get(values, "street")
            region = None
            if province or city or district:
                region = self.regions.parse_parts(province, city, district)
                if region is None:
                    row.error(
                        district_column if district else city_column or province_column,
                        " ".join(t for t in (province, city, district) if t),
                        gettext("Unknown region."),
                    )
                    return
        if len(street) > MAX_STREET:
            row.error(
                column,
                street[:50],
                gettext("The street address is longer than %(max)d characters.") % {"max": MAX_STREET},
            )
            return
        row.order.update(region=region, street=street, postcode=postcode)

    def _parse_status(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "status")
        if not text:
            row.order["status"] = None  # decided from the payment time
            return
        status = self.statuses.get(text.lower())
        if status is None:
            row.error(
                column,
                text,
                gettext("Unknown order status. Use one of: %(words)s.")
                % {"words": "、".join(sorted({w for w in STATUS_WORDS if len(w) <= 4}))},
            )
            return
        row.order["status"] = status
        row.order["platform_status"] = text[:MAX_PLATFORM_STATUS]

    def _parse_time(self, row: ParsedRow, values, key: str):
        raw = self._raw(values, key)
        text, column = self._get(values, key)
        if not text:
            return None
        if isinstance(raw, datetime):
            value = raw
        elif isinstance(raw, date):
            value = datetime.combine(raw, time())
        else:
            found = _DATETIME_RE.match(text) or _COMPACT_RE.match(text)
            try:
                parts = [int(p) for p in found.groups() if p is not None] if found else []
                value = datetime(*parts, tzinfo=self.zone) if len(parts) >= 3 else None
            except ValueError:
                value = None
            if value is None:
                row.error(
                    column, text, gettext("Not a valid date and time: write it as 2026-11-11 20:15:00.")
                )
                return None
        if timezone.is_naive(value):
            value = timezone.make_aware(value.replace(tzinfo=None), self.zone)
        if value > self.now + timedelta(days=1) or value.year < 2000:
            row.error(column, text, gettext("Impossible time: it must be after 2000 and not in the future."))
            return None
        return value

    def _parse_amount(self, row: ParsedRow, values, key: str) -> Decimal | None:
        text, column = self._get(values, key)
        if not text:
            return None
        text = text.replace(",", "").replace("¥", "").replace("￥", "").strip()
        try:
            return pricing.clean_price(text)
        except ValidationError as exc:
            row.error(column, text, exc.messages[0])
            return None

    def _parse_line(self, row: ParsedRow, values) -> None:
        sku, sku_column = self._get(values, "sku")
        if not sku:
            row.error(sku_column, "", gettext("The SKU is missing."))
        elif len(sku) > MAX_SKU:
            row.error(
                sku_column, sku[:50], gettext("The SKU is longer than %(max)d characters.") % {"max": MAX_SKU}
            )
        name, _name_column = self._get(values, "product_name")
        if len(name) > MAX_PRODUCT_NAME:
            name = name[:MAX_PRODUCT_NAME]
        quantity_text, quantity_column = self._get(values, "quantity")
        quantity = None
        if not quantity_text:
            row.error(quantity_column, "", gettext("The quantity is missing."))
        else:
            try:
                quantity = pricing.clean_quantity(quantity_text.replace(",", ""))
            except ValidationError as exc:
                row.error(quantity_column, quantity_text, exc.messages[0])
        unit_price = self._parse_amount(row, values, "unit_price")
        paid = self._parse_amount(row, values, "paid_amount")
        if row.errors or quantity is None:
            return
        discount = Decimal("0")
        if paid is not None and unit_price is None:
            per_unit = paid / quantity
            unit_price = (
                per_unit.quantize(pricing.CENT) if per_unit == per_unit.quantize(pricing.CENT) else None
            )
            if unit_price is None:
                row.error(
                    self.header("unit_price") or self.header("paid_amount"),
                    "",
                    gettext(
                        "The unit price is missing and the amount paid is not a whole number of fen per unit."
                    ),
                )
                return
        elif paid is not None:
            list_amount = pricing.money(quantity * unit_price)
            if paid > list_amount:
                row.error(
                    self.header("paid_amount"),
                    paid,
                    gettext("The amount paid (%(paid)s) is more than quantity × unit price (%(amount)s).")
                    % {"paid": paid, "amount": list_amount},
                )
                return
            unit_price, discount = line_discount(quantity, unit_price, paid)
        row.line = LineRow(
            row=row.number,
            sku=sku,
            sku_column=sku_column,
            name=name,
            quantity=quantity,
            unit_price=unit_price,
            paid=paid,
            discount_rate=discount,
        )


ORDER_KEYS = (
    "account_id",
    "customer_name",
    "recipient",
    "phone",
    "region",
    "street",
    "postcode",
    "status",
    "platform_status",
    "ordered_at",
    "paid_at",
    "shipping",
    "notes",
)


def group_rows(
    parsed: list[ParsedRow], *, current: OrderGroup | None = None
) -> tuple[list[OrderGroup], OrderGroup | None]:
    """Consecutive rows with the same channel and order number -> groups. Returns the finished
    groups and the last one, still open (its next rows may come in the next batch)."""
    done: list[OrderGroup] = []
    for row in parsed:
        channel = row.order.get("channel", "")
        number = row.order.get("number", "")
        same = current is not None and number and (channel, number) == current.key
        if not same:
            if current is not None:
                done.append(current)
            current = OrderGroup(
                channel=channel,
                number=number,
                row=row.number,
                data={key: row.order.get(key) for key in ORDER_KEYS},
            )
            if current.data["status"] is None:
                current.data["status"] = (
                    OrderStatus.PAID if current.data.get("paid_at") else OrderStatus.PENDING_PAYMENT
                )
        current.rows.append(row.number)
        current.errors.extend(row.errors)
        if row.line is not None:
            current.lines.append(row.line)
    return done, current
