"""Inventory admin (read-only stock), the demo step, the home card and ``manage.py rebuild_stock``."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm.accounts import roles
from crm.core.demo import seed_platform
from crm.core.notifications.models import Notification
from crm.core.registry import registry
from sales.models import Product, StockLevel, StockMove, StockReservation, Warehouse
from sales.services import inventory
from sales.services.inventory_demo import seed_inventory

from .factories_inventory import bare_order, default_warehouse, stocked

pytestmark = pytest.mark.django_db

MODELS = ["product", "productcategory", "warehouse", "stocklevel", "stockmove", "stockreservation"]


@pytest.mark.parametrize("model", MODELS)
def test_admin_pages_open_and_stock_is_read_only(model, admin_user, client_for):
    default_warehouse()
    product = stocked(quantity="3")
    inventory.stock_reserve_order(actor=None, order=bare_order([(product, 1)]))
    client = client_for(admin_user)
    assert client.get(reverse(f"admin:sales_{model}_changelist")).status_code == 200
    add = client.get(reverse(f"admin:sales_{model}_add"))
    assert add.status_code == (403 if model.startswith("stock") else 200)


def test_demo_step_tells_the_story_once():
    seed_platform()
    assert registry.demo_steps["inventory"].order == 20  # before quotes (30) and orders (40)
    out = StringIO()
    created = seed_inventory(stdout=out)
    assert created >= 15
    assert Warehouse.objects.get(is_default=True).code == "hz-main"
    assert not Warehouse.objects.get(code="bj").is_active
    assert Product.objects.get(sku="DEMO-TEA-003").status == Product.Status.DISCONTINUED
    assert StockLevel.objects.filter(is_low=True, product__sku="DEMO-DRS-002").exists()
    assert Notification.objects.filter(category="low_stock", recipient__username="salesmgr").exists()
    assert StockMove.objects.filter(kind="transfer_in").count() == 1
    assert StockMove.objects.filter(kind="adjustment").count() == 1
    assert inventory.stock_check() == []
    moves = StockMove.objects.count()
    assert seed_inventory(stdout=out) == 0
    assert StockMove.objects.count() == moves
    assert "skipped" in out.getvalue()


def test_low_stock_home_card_for_who_may_move_stock(make_user, client_for):
    warehouse = default_warehouse()
    stocked(warehouse=warehouse, quantity="2", sku="HOME-1", low_stock_threshold=Decimal("5"))
    manager = make_user(roles.SALES_MANAGER)
    rep = make_user(roles.SALES_REP)
    html = client_for(manager).get("/").content.decode()
    assert reverse("sales:stock-list") + "?low=1" in html
    html = client_for(rep).get("/").content.decode()
    assert reverse("sales:stock-list") + "?low=1" not in html


def test_rebuild_stock_command_reports_and_fixes_differences():
    warehouse = default_warehouse()
    product = stocked(warehouse=warehouse, quantity="5")
    out = StringIO()
    call_command("rebuild_stock", "--check", stdout=out)
    assert "All stock levels match" in out.getvalue()
    StockLevel.objects.filter(product=product).update(on_hand=Decimal("9"))  # a hand edit
    with pytest.raises(CommandError, match="1 stock level"):
        call_command("rebuild_stock", "--check", stdout=StringIO())
    out = StringIO()
    call_command("rebuild_stock", stdout=out)
    assert "1 stock level(s) rebuilt" in out.getvalue()
    assert StockLevel.objects.get(product=product).on_hand == 5
    assert not StockReservation.objects.exists()
