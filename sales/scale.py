"""Orders at scale: fast bulk seeding of realistic orders for benchmarks (issue 4, R5.1.3).

``seed_orders_at_scale(count=5_000_000)`` spreads ``count`` orders, with one to three lines each,
over the customers already in the database (``seed_customers_scale`` first). Like
``customers.scale``, each batch is one transaction of a few multi-row INSERTs built from plain value
dicts, so the cost grows with the batches, never with one query per row.

The shape of the data is what the analysis needs to be tested against: about a fifth of the
customers never order, the others order a heavy-tailed number of times (most once or twice, a few
dozens of times), each between the day they were created and either today or the day they
stopped buying (churned customers), so recency, frequency and monetary value spread out and all
eight RFM segments fill. Statuses follow the age of the order: recent orders await payment or
shipping, old ones are completed, a few are cancelled or refunded. Channels follow the customer's
source; owner and team follow the customer's, so visibility scoping sees realistic numbers.

The orders are generated for the whole run first (numpy arrays: customer and time of each order)
and written in time order, so the time-keyed indexes (by date, status, channel, owner, team) grow
at their ends like a live shop's. The two indexes whose keys are random in any order (the order
total and the recipient phone's blind index) are dropped for the load and rebuilt at the end,
which a sorted build does in a fraction of the time random inserts would take; an interrupted run
rebuilds them at its next start.

Benchmark data, not business history: no audit entry, no status-change row, no payment row, no
stock move, no notification and no task per seeded order (the analysis reads orders, not payments).
Sensitive values go through the model fields: the recipient's phone and street are encrypted and
the phone blind-indexed, exactly as the services store them. Order numbers are ``SX<yyyymm>-<id>``,
a prefix the numbering service never issues, and products are ``SCALE-0001``... in a category of
their own. Everything is deterministic for a given starting point (the largest order id).

Run: ``manage.py seed_orders_scale --count 5000000`` (or ``seed_demo --scale N``). Do not run it
beside other writers of orders: order ids are allocated by the seeder.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models import Max
from django.utils import timezone

from crm.core.bulk import DictInserter
from customers.models import Customer
from customers.scale import _Weighted, mobile_for

from .models import Channel, Order, OrderLine, OrderStatus, Product, ProductCategory

ORDER_NUMBER_PREFIX = "SX"
SKU_PREFIX = "SCALE-"
PRODUCT_COUNT = 400
CATEGORY_NAME = "规模测试商品"
CATEGORY_NAME_EN = "Benchmark products"
# Share of customers who never order; the rest order a Pareto-distributed number of times.
NEVER_ORDERED_SHARE = 0.2
PARETO_SHAPE = 1.6
MAX_WEIGHT = 40.0
# Share of ordering customers still buying today; the others stopped at a random point.
STILL_BUYING_SHARE = 0.55
# Indexes dropped during a large load and rebuilt after it (their keys are random in time order).
DEFERRED_META_INDEXES = ("order_total",)
DEFERRED_FIELD_INDEXES = ("recipient_phone_index",)
DEFER_INDEXES_FROM = 200_000

CHANNEL_FOR_SOURCE = {
    "tmall": Channel.TMALL.value,
    "taobao": Channel.TAOBAO.value,
    "jd": Channel.JD.value,
    "douyin": Channel.DOUYIN.value,
    "pinduoduo": Channel.PINDUODUO.value,
    "wechat": Channel.WECHAT.value,
    "own_site": Channel.OWN_SITE.value,
    "offline": Channel.OFFLINE.value,
}
PLATFORM_CHANNELS = frozenset(CHANNEL_FOR_SOURCE.values()) - {Channel.OFFLINE.value}
OTHER_CHANNELS = [c for c, _ in Channel.choices]
BRANDS = (
    "森马",
    "李宁",
    "安踏",
    "美的",
    "小米",
    "华为",
    "三只松鼠",
    "百草味",
    "欧莱雅",
    "花西子",
    "良品铺子",
    "罗莱",
)
ITEMS = (
    ("T恤", "39.90"), ("连衣裙", "199.00"), ("运动鞋", "329.00"), ("电饭煲", "269.00"),
    ("蓝牙耳机", "159.00"), ("坚果礼盒", "89.90"), ("面霜", "239.00"), ("口红", "129.00"),
    ("四件套", "459.00"), ("保温杯", "69.00"), ("充电宝", "99.00"), ("羽绒服", "699.00"),
    ("双肩包", "179.00"), ("空气炸锅", "349.00"), ("猫粮", "119.00"), ("茶叶", "258.00"),
)  # fmt: skip
STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "文三路",
    "学院路",
    "滨江大道",
    "长江路",
    "和平街",
    "新华路",
)
QUANTITIES = (1, 1, 1, 1, 1, 1, 1, 2, 2, 3)
DISCOUNTS = (Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0.05"), Decimal("0.1"))
SHIPPING = (Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("8"), Decimal("10"))
CENT = Decimal("0.01")
DAY = 86400.0


@dataclass
class OrderScaleResult:
    orders: int = 0
    lines: int = 0
    customers_with_orders: int = 0
    products_created: int = 0
    batches: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def scale_products(*, count: int = PRODUCT_COUNT) -> tuple[list[Product], int]:
    """The benchmark products ``SCALE-0001``... (created once, in a category of their own) and
    how many this call created."""
    category, _ = ProductCategory.objects.get_or_create(
        parent=None, name=CATEGORY_NAME, defaults={"name_en": CATEGORY_NAME_EN, "sort_order": 999}
    )
    existing = set(Product.objects.filter(sku__startswith=SKU_PREFIX).values_list("sku", flat=True))
    missing = []
    for n in range(1, count + 1):
        sku = f"{SKU_PREFIX}{n:04d}"
        if sku in existing:
            continue
        brand = BRANDS[n % len(BRANDS)]
        item, price = ITEMS[n % len(ITEMS)]
        list_price = (Decimal(price) * (Decimal(80 + n % 41) / 100)).quantize(CENT, ROUND_HALF_UP)
        missing.append(
            Product(
                sku=sku,
                name=f"{brand} {item} {n:04d}",
                category=category,
                brand=brand,
                list_price=list_price,
                cost=(list_price * Decimal("0.55")).quantize(CENT, ROUND_HALF_UP),
            )
        )
    Product.objects.bulk_create(missing, batch_size=500)
    return list(Product.objects.filter(sku__startswith=SKU_PREFIX).order_by("sku")), len(missing)


# -- deferred indexes -------------------------------------------------------------------------


def _deferred_index_sql() -> list[tuple[str, object, object]]:
    """(index name, create statement, drop statement) of each index the load defers."""
    out = []
    # Only builds statements (not entered: SQLite's editor refuses to open inside a transaction).
    editor = connection.schema_editor(collect_sql=True)
    editor.deferred_sql = []
    for index in Order._meta.indexes:
        if index.name in DEFERRED_META_INDEXES:
            out.append((index.name, index.create_sql(Order, editor), index.remove_sql(Order, editor)))
    for name in DEFERRED_FIELD_INDEXES:
        f = Order._meta.get_field(name)
        # The name Django gave the field's index in the migration (same hash).
        index_name = editor._create_index_name(Order._meta.db_table, [f.column], suffix="")
        out.append(
            (
                index_name,
                editor._create_index_sql(Order, fields=[f]),
                editor._delete_index_sql(Order, index_name),
            )
        )
    return out


def _existing_indexes() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, Order._meta.db_table))


def drop_deferred_indexes() -> list[str]:
    existing = _existing_indexes()
    dropped = []
    with connection.cursor() as cursor:
        for name, _create, drop in _deferred_index_sql():
            if name in existing:
                cursor.execute(str(drop))
                dropped.append(name)
    return dropped


def restore_deferred_indexes() -> list[str]:
    """Create every deferred index that is missing (after a load, or an interrupted one)."""
    existing = _existing_indexes()
    created = []
    with connection.cursor() as cursor:
        for name, create, _drop in _deferred_index_sql():
            if name not in existing:
                cursor.execute(str(create))
                created.append(name)
    return created


# -- generation -------------------------------------------------------------------------------


@dataclass
class _Customers:
    ids: list[int]
    names: list[str]
    created: object  # numpy array of POSIX seconds
    owners: list
    teams: list
    channels: list[str | None]
    regions: list


def _load_customers(np) -> _Customers:
    ids, names, created, owners, teams, channels, regions = [], [], [], [], [], [], []
    last = 0
    while True:
        chunk = list(
            Customer.objects.filter(pk__gt=last, deleted_at__isnull=True, merged_into__isnull=True)
            .order_by("pk")
            .values_list(
                "pk", "name", "created_at", "owner_id", "team_id", "source", "province_id", "city_id"
            )[:50_000]
        )
        if not chunk:
            break
        for pk, name, created_at, owner, team, source, province, city in chunk:
            ids.append(pk)
            names.append(name)
            created.append(created_at.timestamp())
            owners.append(owner)
            teams.append(team)
            channels.append(CHANNEL_FOR_SOURCE.get(source))
            regions.append(city or province)
        last = chunk[-1][0]
    return _Customers(ids, names, np.asarray(created, dtype="float64"), owners, teams, channels, regions)


def _plan(np, customers: _Customers, *, count: int, now: float, seed: int):
    """(customer index, POSIX time) of every order to write, sorted by time."""
    rng = np.random.default_rng(seed)
    n = len(customers.ids)
    buying = rng.random(n) >= NEVER_ORDERED_SHARE
    weights = np.where(buying, np.minimum(rng.pareto(PARETO_SHAPE, n) + 1.0, MAX_WEIGHT), 0.0)
    counts = rng.multinomial(count, weights / weights.sum())
    start = np.minimum(customers.created, now - DAY)
    still = rng.random(n) < STILL_BUYING_SHARE
    end = np.where(still, now - 60.0, start + (now - start) * rng.uniform(0.05, 0.9, n))
    index = np.repeat(np.arange(n), counts)
    times = start[index] + rng.random(index.size) * (end[index] - start[index])
    order = np.argsort(times, kind="stable")
    return index[order], times[order], int((counts > 0).sum())


class _LineCache:
    """Line amounts per (product, quantity, discount): the same arithmetic as sales.services.pricing
    for a line without an order discount, computed once per combination."""

    def __init__(self, products: list[Product]):
        self.products = products
        self.cache: dict[tuple[int, int, Decimal], tuple] = {}

    def get(self, p: int, quantity: int, discount: Decimal) -> tuple:
        key = (p, quantity, discount)
        hit = self.cache.get(key)
        if hit is None:
            product = self.products[p]
            undiscounted = (product.list_price * quantity).quantize(CENT, ROUND_HALF_UP)
            gross = (product.list_price * quantity * (1 - discount)).quantize(CENT, ROUND_HALF_UP)
            tax = (gross - gross / (1 + product.tax_rate)).quantize(CENT, ROUND_HALF_UP)
            hit = (product, Decimal(quantity), undiscounted, gross, tax, gross - tax)
            self.cache[key] = hit
        return hit


class _OrderBuilder:
    def __init__(self, *, customers: _Customers, products: list[Product], now: datetime, rng: random.Random):
        self.c = customers
        self.lines = _LineCache(products)
        self.product = _Weighted(range(len(products)), [1.0 / (1 + i) for i in range(len(products))], rng)
        self.now = now
        self.rng = rng
        self.other_channel = _Weighted(OTHER_CHANNELS, [18, 22, 12, 14, 10, 10, 6, 8], rng)

    def status(self, age_days: float) -> str:
        r = self.rng.random()
        if age_days < 2:
            options = ((0.25, "pending_payment"), (0.7, "paid"), (0.75, "cancelled"), (1.0, "shipped"))
        elif age_days < 10:
            options = (
                (0.1, "paid"), (0.6, "shipped"), (0.9, "completed"), (0.96, "cancelled"),
                (1.0, "refund_requested"),
            )  # fmt: skip
        else:
            options = ((0.89, "completed"), (0.95, "cancelled"), (0.98, "refunded"), (1.0, "partly_refunded"))
        for limit, status in options:
            if r < limit:
                return status
        return "completed"

    def build(self, pk: int, index: int, posix: float) -> tuple[dict, list[dict]]:
        rng, c = self.rng, self.c
        ordered = datetime.fromtimestamp(posix, tz=UTC)
        age_days = (self.now - ordered).total_seconds() / DAY
        status = self.status(age_days)
        refunded_part = status == "partly_refunded"
        if refunded_part:
            status = OrderStatus.COMPLETED.value
        channel = c.channels[index] or self.other_channel()
        lines, undiscounted, goods, tax, max_discount = [], Decimal(0), Decimal(0), Decimal(0), Decimal(0)
        for position in range(1 + (rng.random() < 0.4) + (rng.random() < 0.12)):
            discount = DISCOUNTS[int(rng.random() * len(DISCOUNTS))]
            quantity = QUANTITIES[int(rng.random() * len(QUANTITIES))]
            product, q, full, gross, line_tax, net = self.lines.get(self.product(), quantity, discount)
            undiscounted += full
            goods += gross
            tax += line_tax
            max_discount = max(max_discount, discount)
            lines.append(
                {
                    "order_id": pk,
                    "position": position,
                    "product_id": product.pk,
                    "sku": product.sku,
                    "name": product.name,
                    "quantity": q,
                    "unit_price": product.list_price,
                    "discount_rate": discount,
                    "tax_rate": product.tax_rate,
                    "net_amount": net,
                    "tax_amount": line_tax,
                    "line_total": gross,
                    "shipped_quantity": q if status in ("shipped", "completed", "refunded") else Decimal(0),
                }
            )
        shipping = SHIPPING[int(rng.random() * len(SHIPPING))]
        total = goods + shipping
        paid_at = shipped_at = completed_at = cancelled_at = None
        paid = refunded = Decimal(0)
        if status not in ("pending_payment", "cancelled"):
            paid_at = ordered + timedelta(seconds=30 + rng.random() * 1800)
            paid = total
        if status == "cancelled":
            cancelled_at = ordered + timedelta(seconds=600 + rng.random() * 86400)
        if status in ("shipped", "completed", "refund_requested", "refunded"):
            shipped_at = paid_at + timedelta(seconds=3600 * (4 + rng.random() * 60))
        if status == "completed":
            completed_at = shipped_at + timedelta(days=3 + rng.random() * 7)
        if status == "refunded":
            refunded = total
        elif refunded_part:
            refunded = (goods * Decimal("0.3")).quantize(CENT, ROUND_HALF_UP)
        last_change = max(d for d in (ordered, paid_at, shipped_at, completed_at, cancelled_at) if d)
        last_change = min(last_change, self.now)
        number_time = timezone.localtime(ordered)
        customer_id = c.ids[index]
        platform = channel in PLATFORM_CHANNELS
        order = {
            "id": pk,
            "number": f"{ORDER_NUMBER_PREFIX}{number_time:%Y%m}-{pk:07d}",
            "channel": channel,
            "external_number": f"{3_000_000_000_000_000 + pk}" if platform else "",
            "customer_id": customer_id,
            "source": Order.Source.IMPORT.value if platform else Order.Source.MANUAL.value,
            "status": status,
            "status_before_refund": "shipped" if status in ("refund_requested", "refunded") else "",
            "platform_status": "",
            "recipient": c.names[index][:100],
            "recipient_phone": mobile_for(customer_id),
            "region_id": c.regions[index],
            "street": f"{STREETS[customer_id % len(STREETS)]}{customer_id % 997 + 1}号",
            "goods_amount": goods,
            "discount_amount": undiscounted - goods,
            "shipping_amount": shipping,
            "tax_amount": tax,
            "total_amount": total,
            "paid_amount": paid,
            "refunded_amount": refunded,
            "max_discount_rate": max_discount,
            "ordered_at": ordered,
            "paid_at": min(paid_at, self.now) if paid_at else None,
            "shipped_at": min(shipped_at, self.now) if shipped_at else None,
            "completed_at": min(completed_at, self.now) if completed_at else None,
            "cancelled_at": min(cancelled_at, self.now) if cancelled_at else None,
            "owner_id": c.owners[index],
            "team_id": c.teams[index],
            "created_at": ordered,
            "updated_at": last_change,
        }
        return order, lines


def seed_orders_at_scale(
    *,
    count: int,
    batch: int = 10_000,
    stdout=None,
    seed: int | None = None,
    defer_indexes: bool | None = None,
) -> OrderScaleResult:
    """Bulk-create ``count`` orders (one to three lines each) over the existing customers.

    ``defer_indexes`` (default: from 200,000 orders) drops the two randomly keyed indexes for the
    load and rebuilds them at the end. Returns the counts and the seconds spent per part.
    Benchmark data: no audit entry, status-change, payment, stock move or task per seeded order.
    """
    import numpy as np

    result = OrderScaleResult()
    if count <= 0:
        return result
    started = time.perf_counter()
    timings = dict.fromkeys(("plan", "build", "orders", "lines", "indexes"), 0.0)
    # MySQL commits the surrounding transaction at any DDL: inside one, leave the indexes alone.
    ddl_allowed = connection.features.can_rollback_ddl or not connection.in_atomic_block
    if ddl_allowed:
        restore_deferred_indexes()  # an earlier run may have been interrupted
    products, result.products_created = scale_products()
    customers = _load_customers(np)
    if not customers.ids:
        raise ValueError("No customers to give orders to: run seed_customers_scale first.")
    now = timezone.now()
    start_id = (Order.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
    seed = start_id if seed is None else seed
    index, times, result.customers_with_orders = _plan(
        np, customers, count=count, now=now.timestamp(), seed=seed
    )
    index, times = index.tolist(), times.tolist()
    builder = _OrderBuilder(customers=customers, products=products, now=now, rng=random.Random(seed))  # noqa: S311
    orders_writer, lines_writer = DictInserter(Order, with_pk=True), DictInserter(OrderLine)
    timings["plan"] = time.perf_counter() - started
    if defer_indexes is None:
        defer_indexes = count >= DEFER_INDEXES_FROM
    defer_indexes = defer_indexes and ddl_allowed
    if defer_indexes:
        drop_deferred_indexes()
    try:
        for first in range(0, count, batch):
            t0 = time.perf_counter()
            orders, lines = [], []
            for offset in range(first, min(first + batch, count)):
                order, order_lines = builder.build(start_id + offset, index[offset], times[offset])
                orders.append(order)
                lines.extend(order_lines)
            t1 = time.perf_counter()
            with transaction.atomic():
                orders_writer.insert(orders)
                t2 = time.perf_counter()
                lines_writer.insert(lines)
            t3 = time.perf_counter()
            for key, seconds in zip(("build", "orders", "lines"), (t1 - t0, t2 - t1, t3 - t2), strict=True):
                timings[key] += seconds
            result.orders += len(orders)
            result.lines += len(lines)
            result.batches += 1
            if settings.DEBUG and not connection.force_debug_cursor:
                reset_queries()
            if stdout is not None:
                elapsed = time.perf_counter() - started
                stdout.write(
                    f"orders: {result.orders:,}/{count:,} in {elapsed:,.1f} s "
                    f"({result.orders / elapsed:,.0f}/s)"
                )
    finally:
        t4 = time.perf_counter()
        rebuilt = restore_deferred_indexes() if defer_indexes else []
        timings["indexes"] = time.perf_counter() - t4
        if stdout is not None and rebuilt:
            stdout.write(f"rebuilt indexes {', '.join(rebuilt)} in {timings['indexes']:,.1f} s")
    result.seconds = time.perf_counter() - started
    result.timings = {k: round(v, 2) for k, v in timings.items()}
    return result
