"""The order import's fast path writes what the services write, row for row (R5.1.3, R5.2.1, R7.2).

The same realistic export (every platform state, repeat buyers, masked phones, addresses that
change, invalid rows, a product short in stock) is imported twice from the same starting point:
once through the services order by order (``fast_path=False``, rolled back), once through the
fast path. Everything written is then compared: orders and lines, status history, payments,
refunds, stock reservations, moves and levels, customers with their phones, accounts and
addresses, and the audit entries of each record in sequence.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from crm.core.audit.models import AuditEntry
from crm.core.audit.services import verify_chain
from customers.models import Address, Customer
from sales.models import (
    Order,
    OrderLine,
    OrderStatusChange,
    Payment,
    Product,
    Refund,
    StockLevel,
    StockMove,
    StockReservation,
)
from sales.services import order_import
from sales.services.order_import import BUILTIN_TEMPLATES, bulk
from tests.perf.order_import import PRODUCTS, order_rows
from tests.sales.factories_inventory import default_warehouse
from tests.sales.files.order_import_samples import PLATFORM_HEADERS, platform_row, write_xlsx

CUSTOMER_CREATION_KEYS = {
    "name",
    "kind",
    "gender",
    "level",
    "stage",
    "source",
    "owner",
    "team",
    "province",
    "city",
    "phones",
    "addresses",
    "platform_accounts",
}
NUMBER_RE = re.compile(r"SO\d{6}-\d{6}")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def catalogue(db):
    from sales.services.inventory import stock_receive

    warehouse = default_warehouse()
    Product.objects.bulk_create(
        Product(sku=f"PERF-{i:04d}", name=f"商品 {i}", list_price=Decimal(50 + i % 200))
        for i in range(PRODUCTS)
    )
    for product in Product.objects.filter(sku__startswith="PERF-"):
        quantity = Decimal(1) if product.sku == "PERF-0007" else Decimal(100_000)  # PERF-0007 runs short
        stock_receive(actor=None, product=product, warehouse=warehouse, quantity=quantity, reason="test")
    Product.objects.filter(sku="PERF-0011").update(low_stock_threshold=Decimal(99_999))
    return warehouse


def _import(actor, path, *, fast_path: bool, track_stock: bool = True):
    headers, _rows = order_import.inspect_file(path, path.name)
    return order_import.run_import(
        actor=actor,
        path=path,
        filename=path.name,
        mapping=order_import.auto_mapping(headers, BUILTIN_TEMPLATES["platform"]),
        channel=BUILTIN_TEMPLATES["platform"].channel,
        fast_path=fast_path,
        track_stock=track_stock,
    )


class _Normaliser:
    """Makes two runs comparable: order numbers become the platform numbers, database ids the
    records' natural keys, and times taken during the import "now"."""

    def __init__(self, start):
        self.start = start
        self.numbers = dict(Order.objects.values_list("number", "external_number"))

    def value(self, value):
        if isinstance(value, dict):
            return {
                k: self.value(v)
                for k, v in value.items()
                if k not in ("id", "customer", "order", "plan_item")
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            if ISO_RE.match(value):
                from datetime import datetime

                try:
                    when = datetime.fromisoformat(value.replace(" ", "T"))
                except ValueError:
                    return value
                if timezone.is_naive(when):
                    when = timezone.make_aware(when)
                return "now" if when >= self.start else value
            return NUMBER_RE.sub(lambda m: "SO:" + self.numbers.get(m.group(0), "?"), value)
        if hasattr(value, "tzinfo") and value is not None and hasattr(value, "year"):
            return "now" if value >= self.start else value.isoformat()
        return value


def _state(start) -> dict:
    norm = _Normaliser(start)
    customers = {}
    customer_key = {}
    for customer in Customer.objects.prefetch_related("phones", "platform_accounts", "addresses"):
        key = (customer.name, tuple(sorted(a.account_id for a in customer.platform_accounts.all())))
        customer_key[customer.pk] = key
        customers[key] = {
            "fields": norm.value(
                [
                    customer.source,
                    customer.owner_id,
                    customer.team_id,
                    customer.level_id,
                    customer.province_id,
                    customer.city_id,
                    customer.last_order_at,
                ]
            ),
            "phones": sorted((p.number, p.label, p.is_primary) for p in customer.phones.all()),
            "accounts": sorted((a.platform, a.account_id) for a in customer.platform_accounts.all()),
            "addresses": sorted(
                (
                    a.recipient,
                    a.phone,
                    a.region_id,
                    a.street,
                    a.postcode,
                    a.is_default_shipping,
                    a.is_default_billing,
                )
                for a in customer.addresses.all()
            ),
        }
    orders = {}
    order_key = {}
    skip = {"id", "number", "customer", "created_at", "updated_at"}
    for order in Order.objects.all():
        order_key[order.pk] = order.external_number
        orders[order.external_number] = {
            "fields": {
                f.attname: norm.value(getattr(order, f.attname))
                for f in Order._meta.concrete_fields
                if f.name not in skip and not f.attname.endswith("_index")
            },
            "customer": customer_key[order.customer_id],
            "lines": [
                norm.value(
                    [
                        line.position,
                        line.sku,
                        line.name,
                        line.quantity,
                        line.unit_price,
                        line.discount_rate,
                        line.tax_rate,
                        line.net_amount,
                        line.tax_amount,
                        line.line_total,
                        line.shipped_quantity,
                    ]
                )
                for line in OrderLine.objects.filter(order=order).order_by("position")
            ],
            "history": [
                norm.value([c.from_status, c.to_status, c.changed_by_id, c.changed_at, c.note])
                for c in OrderStatusChange.objects.filter(order=order).order_by("id")
            ],
            "payments": [
                norm.value([p.amount, p.method, p.reference, p.received_at, p.recorded_by_id])
                for p in Payment.objects.filter(order=order).order_by("id")
            ],
            "refunds": [
                norm.value([r.amount, r.status, r.reason, r.restock, r.requested_at, r.decided_at])
                for r in Refund.objects.filter(order=order).order_by("id")
            ],
            "reservations": sorted(
                norm.value([r.order_line.sku, r.quantity, r.state, r.created_at, r.closed_at])
                for r in StockReservation.objects.filter(order_line__order=order).select_related("order_line")
            ),
            "moves": norm.value(
                [
                    [m.product.sku, m.kind, m.quantity, m.reason, m.user_id]
                    for m in StockMove.objects.filter(order=order).select_related("product").order_by("id")
                ]
            ),
        }
    payment_key = {p.pk: order_key[p.order_id] for p in Payment.objects.all()}
    refund_key = {r.pk: order_key[r.order_id] for r in Refund.objects.all()}
    address_key = {a.pk: customer_key[a.customer_id] for a in Address.objects.all()}
    keys = {
        "sales.order": order_key,
        "sales.payment": payment_key,
        "sales.refund": refund_key,
        "customers.customer": customer_key,
        "customers.address": address_key,
    }
    audit = defaultdict(list)
    for entry in AuditEntry.objects.filter(created_at__gte=start).order_by("seq"):
        mapping = keys.get(entry.object_type)
        key = mapping.get(int(entry.object_id)) if mapping and entry.object_id.isdigit() else entry.object_id
        message, changes = norm.value(entry.message), norm.value(entry.changes)
        if entry.object_type == "customers.customer" and entry.action == "create":
            # New buyers are created as the customers import creates them (customers.services
            # .imports.creating): the same values, recorded without created_at and with "import".
            message, changes = "", {k: v for k, v in changes.items() if k in CUSTOMER_CREATION_KEYS}
        audit[(entry.object_type, str(key))].append([entry.action, entry.actor_id, message, changes])
    levels = {
        level.product.sku: [level.on_hand, level.reserved, level.is_low]
        for level in StockLevel.objects.select_related("product")
    }
    return {"customers": customers, "orders": orders, "audit": dict(audit), "levels": levels}


def _export(tmp_path, count=400):
    rows = order_rows(count)
    rows += [  # a buyer found by phone whose account is new; a free order; a future date
        platform_row(
            订单编号="99000000000001",
            买家会员名="tb_new_account",
            收货人姓名="买家1",
            联系手机="13100000001",
            收货地址="浙江省 杭州市 西湖区 文三路 1 号",
            商品编码="PERF-0001",
            商品标题="商品",
            购买数量=1,
            商品单价="0.00",
            实付金额="0.00",
            订单状态="交易成功",
            订单创建时间="2026-03-01 10:00:00",
            付款时间="2026-03-01 10:01:00",
        ),
        platform_row(
            订单编号="99000000000002",
            买家会员名="tb_future",
            收货人姓名="未来",
            联系手机="13900000002",
            收货地址="浙江省 杭州市 西湖区 文三路 2 号",
            商品编码="PERF-0002",
            商品标题="商品",
            购买数量=1,
            商品单价="10.00",
            实付金额="10.00",
            订单状态="买家已付款",
            订单创建时间="2099-03-01 10:00:00",
            付款时间="",
        ),
        platform_row(
            订单编号="99000000000003",
            买家会员名="tb_short",
            收货人姓名="缺货",
            联系手机="13900000003",
            收货地址="浙江省 杭州市 西湖区 文三路 3 号",
            商品编码="PERF-0007",
            商品标题="商品",
            购买数量=3,
            商品单价="10.00",
            实付金额="30.00",
            订单状态="卖家已发货",
            订单创建时间="2026-03-02 10:00:00",
            付款时间="2026-03-02 10:01:00",
        ),
    ]
    return write_xlsx(tmp_path / "export.xlsx", PLATFORM_HEADERS, rows)


@pytest.mark.slow
@pytest.mark.parametrize("track_stock", [True, False])
def test_fast_path_writes_what_the_services_write(importer, catalogue, tmp_path, track_stock):
    path = _export(tmp_path)
    start = timezone.now()
    with transaction.atomic():
        by_services = _import(importer, path, fast_path=False, track_stock=track_stock)
        expected = _state(start)
        transaction.set_rollback(True)
    assert not Order.objects.exists()
    levels_before = _state(start)["levels"]
    fast = _import(importer, path, fast_path=True, track_stock=track_stock)
    actual = _state(start)

    assert by_services.created > 200
    assert (fast.created, fast.updated, fast.unchanged, fast.customers_created, fast.failed_orders) == (
        by_services.created,
        by_services.updated,
        by_services.unchanged,
        by_services.customers_created,
        by_services.failed_orders,
    )
    assert sorted((e.row, e.column, e.value, e.reason) for e in fast.errors) == sorted(
        (e.row, e.column, e.value, e.reason) for e in by_services.errors
    )
    if track_stock:
        assert any("PERF-0007 is short" in e.reason for e in fast.errors)  # left to the services
    else:  # history: no stock moves, nothing short
        assert not any("is short" in e.reason for e in fast.errors)
        assert actual["levels"] == levels_before
        assert not StockReservation.objects.exists()
        assert not StockMove.objects.filter(order__isnull=False).exists()
        assert not Order.objects.filter(stock_tracked=True).exists()
    assert any("not in the future" in e.reason for e in fast.errors)
    assert actual["levels"] == expected["levels"]
    assert actual["customers"] == expected["customers"]
    assert actual["orders"].keys() == expected["orders"].keys()
    for number, order in expected["orders"].items():
        assert actual["orders"][number] == order, number
    assert actual["audit"].keys() == expected["audit"].keys()
    for key, entries in expected["audit"].items():
        assert actual["audit"][key] == entries, key
    assert verify_chain().ok


def test_fast_path_plans_the_states_the_services_walk():
    order = Order(total_amount=Decimal("10.00"), paid_amount=Decimal("0"), status="draft")
    now = timezone.now()
    paid_at = now - timezone.timedelta(days=3)
    events = bulk.plan_states(order, status="completed", paid_at=paid_at, platform_status="交易成功", now=now)
    assert [e[0] for e in events] == ["reserve", "status", "payment", "status", "ship", "status", "status"]
    assert [e[2] for e in events if e[0] == "status"] == ["pending_payment", "paid", "shipped", "completed"]
    assert order.paid_amount == Decimal("10.00")
    assert order.paid_at == paid_at
    assert order.shipped_at == now

    cancelled = Order(total_amount=Decimal("10.00"), paid_amount=Decimal("0"), status="draft")
    events = bulk.plan_states(cancelled, status="cancelled", paid_at=paid_at, platform_status="", now=now)
    assert events == [("status", "draft", "cancelled", now, "Status from the platform")]
    assert cancelled.paid_amount == 0
    assert cancelled.cancelled_at == now


def test_a_shortage_found_under_the_locks_sends_the_run_to_the_services(
    importer, catalogue, tmp_path, monkeypatch
):
    """The unlocked pre-check misses a shortage (a concurrent import took the stock): the locked
    check refuses the run, which the services then write order by order."""
    monkeypatch.setattr(bulk, "stock_shortages", lambda planned, warehouse: set())
    calls = []
    write_orders = bulk.write_orders
    monkeypatch.setattr(
        bulk, "write_orders", lambda **kw: calls.append(len(kw["planned"])) or write_orders(**kw)
    )
    report = _import(importer, _export(tmp_path, count=60), fast_path=True)
    assert calls  # the fast path was tried
    assert any("PERF-0007 is short" in e.reason for e in report.errors)
    assert not Order.objects.filter(external_number="99000000000003").exists()
    assert Order.objects.filter(external_number="99000000000002").exists() is False  # future date
    assert report.created == Order.objects.count() > 20
    level = StockLevel.objects.get(product__sku="PERF-0007")
    assert 0 <= level.reserved <= level.on_hand <= 1
    assert verify_chain().ok


def test_a_database_error_in_the_run_rolls_it_back_and_the_services_write_it(
    importer, catalogue, tmp_path, monkeypatch
):
    """Say another import took a buyer account meanwhile: the run is rolled back whole (buyers
    included) and the services write its orders one by one, so nothing is lost or doubled."""
    from django.db import IntegrityError

    from sales.services.order_import import writing

    real = writing.customer_creating.customer_create_many
    calls = []

    def flaky(**kwargs):
        real(**kwargs)  # written, then the insert of a later table fails
        calls.append(1)
        raise IntegrityError("duplicate account")

    monkeypatch.setattr(writing.customer_creating, "customer_create_many", flaky)
    path = _export(tmp_path, count=60)
    report = _import(importer, path, fast_path=True)
    assert calls
    assert report.created == Order.objects.count() > 20
    assert report.customers_created == Customer.objects.count()
    assert Customer.objects.filter(platform_accounts__account_id="tb_short").count() <= 1
    assert verify_chain().ok


@pytest.mark.parametrize("how", ["deadlock", "savepoint lost"])
def test_a_batch_the_database_rolls_back_is_written_again(
    importer, catalogue, tmp_path, monkeypatch, settings, how
):
    """A deadlock victim (an analysis refresh held the same customers): MariaDB undoes the batch's
    whole transaction. The batch is written again from the writer's state before it, and the import
    ends as if nothing had happened: the same report, rows and audit entries."""
    from django.db import OperationalError, connections

    from sales.services.order_import import running
    from sales.services.order_import.writing import BatchWriter

    connection = connections["default"]
    settings.ORDER_IMPORT_BATCH = 60
    path = _export(tmp_path, count=240)
    start = timezone.now()
    with transaction.atomic():
        clean = _import(importer, path, fast_path=True)
        expected = _state(start)
        transaction.set_rollback(True)

    monkeypatch.setattr(running, "_outside_transaction", lambda: True)  # the test's transaction wraps it
    monkeypatch.setattr(running.time, "sleep", lambda seconds: None)
    failing = [2, 4]  # the 2nd and 4th calls fail once each
    calls = []
    write, write_orders = BatchWriter.write, bulk.write_orders

    def write_then_deadlock(self, groups):
        calls.append(len(groups))
        write(self, groups)
        if len(calls) in failing:
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")

    lose_savepoint = []
    savepoint_rollback = type(connection).savepoint_rollback

    def rollback(self, sid):
        if lose_savepoint:  # what InnoDB does to a deadlock victim: the savepoint went with it
            lose_savepoint.clear()
            raise OperationalError(1305, f"SAVEPOINT {sid} does not exist")
        return savepoint_rollback(self, sid)

    def write_orders_then_lose_the_transaction(**kwargs):
        calls.append(len(kwargs["planned"]))
        write_orders(**kwargs)
        if len(calls) in failing:
            lose_savepoint.append(True)
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")

    if how == "deadlock":
        monkeypatch.setattr(BatchWriter, "write", write_then_deadlock)
    else:
        monkeypatch.setattr(type(connection), "savepoint_rollback", rollback)
        monkeypatch.setattr(bulk, "write_orders", write_orders_then_lose_the_transaction)
    report = _import(importer, path, fast_path=True)

    assert len(calls) >= 5
    assert (report.created, report.updated, report.unchanged, report.customers_created) == (
        clean.created,
        clean.updated,
        clean.unchanged,
        clean.customers_created,
    )
    assert (report.orders, report.failed_orders, report.error_count) == (
        clean.orders,
        clean.failed_orders,
        clean.error_count,
    )
    assert [(e.row, e.column, e.reason) for e in report.errors] == [
        (e.row, e.column, e.reason) for e in clean.errors
    ]
    assert _state(start) == expected
    assert verify_chain().ok


def test_a_batch_that_keeps_being_rolled_back_fails_the_import(importer, catalogue, tmp_path, monkeypatch):
    from django.db import OperationalError

    from sales.services.order_import import running
    from sales.services.order_import.writing import BatchWriter

    monkeypatch.setattr(running, "_outside_transaction", lambda: True)
    monkeypatch.setattr(running.time, "sleep", lambda seconds: None)
    calls = []

    def always_deadlock(self, groups):
        calls.append(1)
        raise OperationalError(1213, "Deadlock found when trying to get lock")

    monkeypatch.setattr(BatchWriter, "write", always_deadlock)
    with pytest.raises(OperationalError):
        _import(importer, _export(tmp_path, count=20), fast_path=True)
    assert len(calls) == running.BATCH_ATTEMPTS
    assert not Order.objects.exists()
