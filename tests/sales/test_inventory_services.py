"""Catalogue and stock services: products, tiers, categories, warehouses, receive/adjust/transfer,
low-stock notifications, and the price a customer pays."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.notifications.models import Notification
from customers.models import CustomerLevel
from sales.models import PriceTier, Product, StockLevel, StockMove
from sales.services import catalog, inventory
from tests.customers.factories import CustomerFactory

from .factories import CategoryFactory, ProductFactory, WarehouseFactory
from .factories_inventory import bare_order, default_warehouse, stocked

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def stock_manager(make_user):
    return make_user(roles.SALES_MANAGER, username="stockmgr")


def level(product, warehouse):
    return StockLevel.objects.get(product=product, warehouse=warehouse)


# Products -------------------------------------------------------------------------------------------


def test_product_create_with_tiers_and_audit(stock_manager):
    category = CategoryFactory()
    gold = CustomerLevel.objects.get(code="gold")
    product = catalog.product_create(
        actor=stock_manager,
        sku="DRS-100",
        name="连衣裙",
        category=category,
        list_price="399.00",
        cost="150",
        tiers={gold: "359.00"},
    )
    assert product.tax_rate == D("0.13")
    assert PriceTier.objects.get(product=product, level=gold).price == D("359.00")
    assert AuditEntry.objects.filter(
        object_type="sales.product", object_id=str(product.pk), action="create"
    ).exists()


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"sku": "", "name": "x", "list_price": "1"}, "sku", ""),
        ({"sku": "A B", "name": "x", "list_price": "1"}, "sku", "A B"),
        ({"sku": "OK-1", "name": "x", "list_price": "1.234"}, "list_price", "1.234"),
        ({"sku": "OK-1", "name": "x", "list_price": "-1"}, "list_price", "negative"),
        ({"sku": "OK-1", "name": "x", "list_price": "abc"}, "list_price", "number"),
        ({"sku": "OK-1", "name": "", "list_price": "1"}, "name", ""),
        ({"sku": "OK-1", "name": "x", "list_price": "1", "tax_rate": "1.5"}, "tax_rate", "100%"),
        (
            {"sku": "OK-1", "name": "x", "list_price": "1", "low_stock_threshold": "-3"},
            "low_stock_threshold",
            "negative",
        ),
        ({"sku": "OK-1", "name": "x", "list_price": "1", "status": "gone"}, "status", "valid"),
    ],
)
def test_product_create_rejects_bad_input(values, field, text):
    with pytest.raises(ValidationError) as caught:
        catalog.product_create(actor=None, **values)
    assert field in caught.value.message_dict
    assert text in " ".join(caught.value.message_dict[field])
    assert not Product.objects.exists()


def test_sku_is_unique_case_insensitively():
    ProductFactory(sku="ABC-1")
    with pytest.raises(ValidationError, match=r"ABC-1|abc-1"):
        catalog.product_create(actor=None, sku="abc-1", name="x", list_price="1")


def test_product_update_changes_fields_tiers_and_records_diff(stock_manager):
    product = ProductFactory(sku="UPD-1", list_price=D("100.00"))
    silver = CustomerLevel.objects.get(code="silver")
    catalog.product_update(actor=stock_manager, product=product, list_price="120.00", tiers={silver: "110"})
    product.refresh_from_db()
    assert product.list_price == D("120.00")
    entry = AuditEntry.objects.filter(object_type="sales.product", action="update").latest("seq")
    assert entry.changes["list_price"] == ["100.00", "120.00"]
    assert "tiers" in entry.changes
    catalog.product_update(actor=stock_manager, product=product, tiers={silver: ""})
    assert not PriceTier.objects.filter(product=product).exists()


def test_product_services_need_permissions(make_user):
    rep = make_user(roles.SALES_REP)
    with pytest.raises(PermissionDenied):
        catalog.product_create(actor=rep, sku="X-1", name="x", list_price="1")
    product = ProductFactory()
    with pytest.raises(PermissionDenied):
        catalog.product_update(actor=rep, product=product, name="y")


def test_price_for_uses_the_customers_level_tier_else_list_price():
    gold = CustomerLevel.objects.get(code="gold")
    product = ProductFactory(list_price=D("199.00"))
    PriceTier.objects.create(product=product, level=gold, price=D("179.00"))
    assert catalog.price_for(product=product, customer=CustomerFactory(level=gold)) == D("179.00")
    regular = CustomerLevel.objects.get(code="regular")
    assert catalog.price_for(product=product, customer=CustomerFactory(level=regular)) == D("199.00")
    assert catalog.price_for(product=product, customer=None) == D("199.00")


# Categories -----------------------------------------------------------------------------------------


def test_category_tree_rules():
    clothes = catalog.category_create(actor=None, name="服装")
    women = catalog.category_create(actor=None, name="女装", parent=clothes)
    with pytest.raises(ValidationError, match="女装"):
        catalog.category_create(actor=None, name="女装", parent=clothes)
    with pytest.raises(ValidationError, match="under itself"):
        catalog.category_update(actor=None, category=clothes, parent=women)
    ProductFactory(category=women)
    with pytest.raises(ValidationError, match="女装"):
        catalog.category_delete(actor=None, category=women)


# Warehouses -----------------------------------------------------------------------------------------


def test_first_warehouse_is_default_and_default_moves():
    first = catalog.warehouse_create(actor=None, code="HZ", name="杭州仓")
    assert first.code == "hz"
    assert first.is_default
    second = catalog.warehouse_create(actor=None, code="gz", name="广州仓", is_default=True)
    first.refresh_from_db()
    assert second.is_default
    assert not first.is_default
    with pytest.raises(ValidationError, match="gz"):
        catalog.warehouse_create(actor=None, code="gz", name="again")
    with pytest.raises(ValidationError):
        catalog.warehouse_create(actor=None, code="bad code!", name="x")


def test_warehouse_with_stock_cannot_be_deactivated():
    warehouse = default_warehouse()
    stocked(warehouse=warehouse, quantity="1")
    with pytest.raises(ValidationError, match="still holds stock"):
        catalog.warehouse_update(actor=None, warehouse=warehouse, is_active=False, is_default=False)


# Moves ----------------------------------------------------------------------------------------------


def test_receive_creates_move_level_and_audit(stock_manager):
    warehouse = default_warehouse()
    product = ProductFactory(sku="RCV-1")
    move = inventory.stock_receive(
        actor=stock_manager,
        product=product,
        warehouse=warehouse,
        quantity="12.5",
        reason="PO-1",
        unit_cost="80",
    )
    assert (move.kind, move.quantity, move.unit_cost, move.user) == (
        "receipt",
        D("12.5"),
        D("80"),
        stock_manager,
    )
    assert level(product, warehouse).on_hand == D("12.5")
    entry = AuditEntry.objects.filter(object_type="sales.stockmove", object_id=str(move.pk)).get()
    assert entry.changes["sku"] == [None, "RCV-1"]


@pytest.mark.parametrize(
    ("quantity", "reason", "unit_cost", "field"),
    [
        ("0", "r", None, "quantity"),
        ("-1", "r", None, "quantity"),
        ("1.2345", "r", None, "quantity"),
        ("abc", "r", None, "quantity"),
        ("NaN", "r", None, "quantity"),
        ("1", "", None, "reason"),
        ("1", "x" * 201, None, "reason"),
        ("1", "r", "1.001", "unit_cost"),
        ("1", "r", "-5", "unit_cost"),
    ],
)
def test_receive_rejects_bad_input(quantity, reason, unit_cost, field):
    warehouse = default_warehouse()
    product = ProductFactory()
    with pytest.raises(ValidationError) as caught:
        inventory.stock_receive(
            actor=None,
            product=product,
            warehouse=warehouse,
            quantity=quantity,
            reason=reason,
            unit_cost=unit_cost,
        )
    assert field in caught.value.message_dict
    assert not StockMove.objects.exists()


def test_float_quantities_are_refused():
    with pytest.raises(TypeError):
        inventory.stock_receive(
            actor=None, product=ProductFactory(), warehouse=default_warehouse(), quantity=1.5, reason="r"
        )


def test_moves_need_the_permission(make_user):
    rep = make_user(roles.SALES_REP)
    with pytest.raises(PermissionDenied):
        inventory.stock_receive(
            actor=rep, product=ProductFactory(), warehouse=default_warehouse(), quantity="1", reason="r"
        )


def test_adjust_cannot_take_reserved_or_missing_stock():
    warehouse = default_warehouse()
    product = stocked(quantity="10", sku="ADJ-1")
    inventory.stock_reserve_order(actor=None, order=bare_order([(product, 7)]))
    with pytest.raises(ValidationError, match=r"ADJ-1.*3 available, 4 wanted"):
        inventory.stock_adjust(actor=None, product=product, warehouse=warehouse, quantity="-4", reason="盘亏")
    move = inventory.stock_adjust(
        actor=None, product=product, warehouse=warehouse, quantity="-3", reason="盘亏"
    )
    assert move.quantity == -3
    assert level(product, warehouse).on_hand == 7
    with pytest.raises(ValidationError, match="other than zero"):
        inventory.stock_adjust(actor=None, product=product, warehouse=warehouse, quantity="0", reason="x")


def test_adjust_into_an_empty_warehouse_cannot_go_negative():
    warehouse = default_warehouse()
    product = ProductFactory(sku="NEG-1")
    with pytest.raises(ValidationError, match="NEG-1"):
        inventory.stock_adjust(actor=None, product=product, warehouse=warehouse, quantity="-1", reason="x")
    assert not StockMove.objects.exists()


def test_transfer_moves_available_stock_in_pairs():
    hz = default_warehouse()
    gz = WarehouseFactory(code="gz", name="广州仓")
    product = stocked(quantity="10", warehouse=hz)
    out, into = inventory.stock_transfer(
        actor=None, product=product, from_warehouse=hz, to_warehouse=gz, quantity="4", reason="调拨"
    )
    assert (out.kind, out.quantity, into.kind, into.quantity) == ("transfer_out", -4, "transfer_in", 4)
    assert into.transfer_pair == out
    assert level(product, hz).on_hand == 6
    assert level(product, gz).on_hand == 4
    with pytest.raises(ValidationError, match="different warehouse"):
        inventory.stock_transfer(
            actor=None, product=product, from_warehouse=hz, to_warehouse=hz, quantity="1", reason="x"
        )
    with pytest.raises(ValidationError, match="6 available, 7 wanted"):
        inventory.stock_transfer(
            actor=None, product=product, from_warehouse=hz, to_warehouse=gz, quantity="7", reason="x"
        )
    closed = WarehouseFactory(code="old", is_active=False)
    with pytest.raises(ValidationError, match="not active"):
        inventory.stock_transfer(
            actor=None, product=product, from_warehouse=hz, to_warehouse=closed, quantity="1", reason="x"
        )


def test_level_always_equals_the_sum_of_its_moves():
    hz = default_warehouse()
    gz = WarehouseFactory(code="gz")
    product = stocked(quantity="10", warehouse=hz)
    inventory.stock_adjust(actor=None, product=product, warehouse=hz, quantity="-2", reason="x")
    inventory.stock_transfer(
        actor=None, product=product, from_warehouse=hz, to_warehouse=gz, quantity="3", reason="x"
    )
    order = bare_order([(product, 2)])
    inventory.stock_reserve_order(actor=None, order=order)
    inventory.stock_ship_order(actor=None, order=order)
    inventory.stock_return_order(actor=None, order=order, reason="退货", quantities={product: "1"})
    for warehouse in (hz, gz):
        total = StockMove.objects.filter(product=product, warehouse=warehouse).aggregate(t=Sum("quantity"))[
            "t"
        ]
        assert level(product, warehouse).on_hand == total
    assert inventory.stock_check() == []


# Low stock ------------------------------------------------------------------------------------------


def test_low_stock_notifies_stock_managers_once_per_crossing(make_user):
    keeper = make_user(roles.SALES_MANAGER, username="keeper")
    other = make_user(roles.SALES_MANAGER, username="other")
    warehouse = default_warehouse()
    warehouse.stock_managers.add(keeper)
    product = ProductFactory(sku="LOW-1", low_stock_threshold=D("5"))
    inventory.stock_receive(actor=None, product=product, warehouse=warehouse, quantity="10", reason="x")
    assert not Notification.objects.exists()
    inventory.stock_adjust(
        actor=None, product=product, warehouse=warehouse, quantity="-5", reason="x"
    )  # 5: crossed
    notes = Notification.objects.filter(category="low_stock")
    assert [n.recipient for n in notes.all()] == [keeper]
    assert "LOW-1" in notes.get().title
    assert notes.get().url == product.get_absolute_url()
    assert level(product, warehouse).is_low
    inventory.stock_adjust(
        actor=None, product=product, warehouse=warehouse, quantity="-1", reason="x"
    )  # still low
    assert notes.count() == 1
    inventory.stock_receive(
        actor=None, product=product, warehouse=warehouse, quantity="10", reason="x"
    )  # 14: re-armed
    assert not level(product, warehouse).is_low
    inventory.stock_reserve_order(actor=None, order=bare_order([(product, 10)]))  # 4 available: crossed again
    assert notes.count() == 2
    assert not Notification.objects.filter(recipient=other).exists()


def test_low_stock_without_managers_goes_to_who_may_move_stock(make_user):
    make_user(roles.SALES_MANAGER, username="mgr-any")
    make_user(roles.SALES_REP, username="rep-any")
    warehouse = default_warehouse()
    product = ProductFactory(low_stock_threshold=D("5"))
    inventory.stock_receive(actor=None, product=product, warehouse=warehouse, quantity="3", reason="x")
    recipients = set(
        Notification.objects.filter(category="low_stock").values_list("recipient__username", flat=True)
    )
    assert "mgr-any" in recipients
    assert "rep-any" not in recipients


def test_threshold_zero_never_notifies():
    warehouse = default_warehouse()
    product = ProductFactory(low_stock_threshold=D("0"))
    inventory.stock_receive(actor=None, product=product, warehouse=warehouse, quantity="1", reason="x")
    inventory.stock_adjust(actor=None, product=product, warehouse=warehouse, quantity="-1", reason="x")
    assert not Notification.objects.exists()


def test_receipts_at_different_costs_value_stock_at_their_weighted_average():
    """R5.2.1 valuation: receipts move the average cost; shipments, returns and corrections don't."""
    from sales.selectors.inventory import stock_list, stock_totals

    hz = default_warehouse()
    product = ProductFactory(cost=D("8.00"))
    inventory.stock_receive(
        actor=None, product=product, warehouse=hz, quantity="10", reason="a", unit_cost="10"
    )
    assert level(product, hz).average_cost == D("10.0000")
    inventory.stock_receive(
        actor=None, product=product, warehouse=hz, quantity="30", reason="b", unit_cost="20"
    )
    assert level(product, hz).average_cost == D("17.5000")  # (10x10 + 30x20) / 40
    inventory.stock_adjust(actor=None, product=product, warehouse=hz, quantity="-20", reason="破损")
    inventory.stock_adjust(actor=None, product=product, warehouse=hz, quantity="5", reason="盘盈")
    inventory.stock_receive(actor=None, product=product, warehouse=hz, quantity="5", reason="no cost given")
    current = level(product, hz)
    assert current.average_cost == D("17.5000")
    assert current.on_hand == 30
    totals = stock_totals(stock_list(user=None, filters={"q": product.sku}))
    assert totals.value == D("525.00")  # 30 x 17.50, not 30 x the product's 8.00


def test_transferred_goods_keep_their_cost_and_levels_without_receipts_use_the_product_cost():
    hz = default_warehouse()
    gz = WarehouseFactory(code="gz2", name="广州仓")
    product = ProductFactory(cost=D("8.00"))
    inventory.stock_receive(
        actor=None, product=product, warehouse=hz, quantity="4", reason="a", unit_cost="12"
    )
    _out, into = inventory.stock_transfer(
        actor=None, product=product, from_warehouse=hz, to_warehouse=gz, quantity="2", reason="调拨"
    )
    assert into.unit_cost == D("12.00")
    assert level(product, gz).average_cost == D("12.0000")
    StockLevel.objects.filter(product=product, warehouse=gz).update(
        average_cost=None
    )  # from before averaging
    assert inventory.unit_cost_of(level(product, gz)) == D("8.00")
    with pytest.raises(ValidationError) as caught:
        inventory.stock_receive(
            actor=None, product=product, warehouse=hz, quantity="1", reason="x", unit_cost="-1"
        )
    assert "unit_cost" in caught.value.message_dict
