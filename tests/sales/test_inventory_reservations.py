"""Reservations, shipments, releases and returns of orders (the API the order services call)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm.core.audit.models import AuditEntry
from sales.models import StockLevel, StockMove, StockReservation
from sales.services.inventory import (
    stock_release_order,
    stock_reserve_order,
    stock_return_order,
    stock_ship_order,
)

from .factories import ProductFactory, WarehouseFactory
from .factories_inventory import bare_order, default_warehouse, stocked

pytestmark = pytest.mark.django_db

D = Decimal


def level(product, warehouse):
    return StockLevel.objects.get(product=product, warehouse=warehouse)


def test_reserve_all_lines_in_default_warehouse():
    warehouse = default_warehouse()
    a, b = stocked(quantity="10"), stocked(quantity="5")
    order = bare_order([(a, 3), (b, "1.5")])
    reservations = stock_reserve_order(actor=None, order=order)
    assert sorted((r.product_id, r.quantity) for r in reservations) == sorted(
        [(a.pk, D(3)), (b.pk, D("1.5"))]
    )
    assert {r.warehouse_id for r in reservations} == {warehouse.pk}
    assert level(a, warehouse).reserved == 3
    assert level(a, warehouse).available == 7
    assert level(a, warehouse).on_hand == 10  # reserving moves nothing
    assert not StockMove.objects.filter(kind=StockMove.Kind.SHIPMENT).exists()
    entry = AuditEntry.objects.filter(object_type="sales.order", object_id=str(order.pk)).get()
    assert entry.changes["stock_reserved"][1] == {a.sku: "3.000", b.sku: "1.500"}


def test_reserve_is_idempotent_and_tops_up():
    warehouse = default_warehouse()
    product = stocked(quantity="10")
    order = bare_order([(product, 4)])
    stock_reserve_order(actor=None, order=order)
    entries = AuditEntry.objects.count()
    again = stock_reserve_order(actor=None, order=order)
    assert len(again) == 1
    assert level(product, warehouse).reserved == 4
    assert AuditEntry.objects.count() == entries  # a no-op leaves no audit noise
    line = order.lines.get()
    line.quantity = D(6)
    line.save()
    stock_reserve_order(actor=None, order=order)
    assert StockReservation.objects.get(order_line=line, state="active").quantity == 6
    assert level(product, warehouse).reserved == 6


def test_reserve_all_or_nothing_naming_each_short_sku():
    warehouse = default_warehouse()
    enough = stocked(quantity="10", sku="OK-1")
    short = stocked(quantity="2", sku="SHORT-1")
    missing = ProductFactory(sku="NONE-1")  # never received
    order = bare_order([(enough, 1), (short, 3), (missing, 1)])
    with pytest.raises(ValidationError) as caught:
        stock_reserve_order(actor=None, order=order)
    messages = caught.value.messages
    assert len(messages) == 2
    assert "SHORT-1" in messages[0]
    assert "2 available, 3 needed" in messages[0]
    assert "NONE-1" in messages[1]
    assert "0 available, 1 needed" in messages[1]
    assert "OK-1" not in " ".join(messages)
    assert not StockReservation.objects.exists()
    assert level(enough, warehouse).reserved == 0


def test_two_lines_of_one_product_are_checked_together():
    default_warehouse()
    product = stocked(quantity="5")
    order = bare_order([(product, 3), (product, 3)])
    with pytest.raises(ValidationError, match="5"):
        stock_reserve_order(actor=None, order=order)


def test_reserve_in_the_orders_warehouse():
    default_warehouse()
    other = WarehouseFactory(code="bj", name="北京仓")
    product = stocked(quantity="4", warehouse=other)
    stocked(product=product, quantity="1")  # only 1 in the default warehouse
    order = bare_order([(product, 3)], warehouse=other)
    (reservation,) = stock_reserve_order(actor=None, order=order)
    assert reservation.warehouse == other


def test_reserve_without_any_warehouse_is_refused():
    product = ProductFactory()
    order = bare_order([(product, 1)])
    with pytest.raises(ValidationError, match="no active default warehouse"):
        stock_reserve_order(actor=None, order=order)


def test_inactive_warehouse_is_refused():
    warehouse = default_warehouse()
    product = stocked(quantity="4")
    closed = WarehouseFactory(code="old", is_active=False)
    order = bare_order([(product, 1)], warehouse=closed)
    with pytest.raises(ValidationError, match="not active"):
        stock_reserve_order(actor=None, order=order)
    assert level(product, warehouse).reserved == 0


def test_release_gives_stock_back_once():
    warehouse = default_warehouse()
    product = stocked(quantity="4")
    order = bare_order([(product, 3)])
    stock_reserve_order(actor=None, order=order)
    released = stock_release_order(actor=None, order=order)
    assert [r.state for r in released] == ["released"]
    assert level(product, warehouse).reserved == 0
    assert stock_release_order(actor=None, order=order) == []
    assert level(product, warehouse).reserved == 0


def test_ship_turns_reservations_into_shipments_once():
    warehouse = default_warehouse()
    product = stocked(quantity="4")
    order = bare_order([(product, 3)])
    stock_reserve_order(actor=None, order=order)
    (move,) = stock_ship_order(actor=None, order=order)
    assert (move.kind, move.quantity, move.order_id) == ("shipment", D(-3), order.pk)
    current = level(product, warehouse)
    assert (current.on_hand, current.reserved) == (1, 0)
    assert order.lines.get().shipped_quantity == 3
    assert stock_ship_order(actor=None, order=order) == []
    assert level(product, warehouse).on_hand == 1
    # A shipped line is not reserved again.
    assert stock_reserve_order(actor=None, order=order) == []
    assert level(product, warehouse).reserved == 0


def test_ship_without_reservation_ships_nothing():
    default_warehouse()
    product = stocked(quantity="4")
    order = bare_order([(product, 3)])
    assert stock_ship_order(actor=None, order=order) == []


def test_return_restocks_shipped_quantities_once():
    warehouse = default_warehouse()
    product = stocked(quantity="4")
    order = bare_order([(product, 3)])
    stock_reserve_order(actor=None, order=order)
    stock_ship_order(actor=None, order=order)
    (move,) = stock_return_order(actor=None, order=order, reason="退货")
    assert (move.kind, move.quantity, move.warehouse_id) == ("return", D(3), warehouse.pk)
    assert level(product, warehouse).on_hand == 4
    assert stock_return_order(actor=None, order=order, reason="退货") == []
    assert level(product, warehouse).on_hand == 4


def test_partial_return_and_too_much():
    warehouse = default_warehouse()
    product = stocked(quantity="4", sku="RET-1")
    order = bare_order([(product, 3)])
    stock_reserve_order(actor=None, order=order)
    stock_ship_order(actor=None, order=order)
    stock_return_order(actor=None, order=order, reason="部分退货", quantities={product: "1"})
    assert level(product, warehouse).on_hand == 2
    with pytest.raises(ValidationError, match="RET-1: only 2 can be returned, 5 given"):
        stock_return_order(actor=None, order=order, reason="退货", quantities={product.pk: "5"})
    with pytest.raises(ValidationError, match="RET-1"):
        stock_return_order(actor=None, order=order, reason="退货", quantities={product.pk: "-1"})
    stock_return_order(actor=None, order=order, reason="退货")
    assert level(product, warehouse).on_hand == 4


def test_return_needs_a_reason():
    default_warehouse()
    order = bare_order([(stocked(quantity="1"), 1)])
    with pytest.raises(ValidationError):
        stock_return_order(actor=None, order=order, reason="  ")
