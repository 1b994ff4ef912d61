"""The order import's demo step: two overlapping Tmall exports imported as salesmgr (R5.1.3)."""

from io import StringIO

import pytest

from crm.core.demo import seed_platform
from crm.core.registry import registry
from customers.demo import seed_customers
from sales.models import Order, OrderStatus
from sales.services.inventory_demo import seed_inventory
from sales.services.order_import.demo import seed_order_import

pytestmark = pytest.mark.django_db


def test_demo_step_imports_two_overlapping_exports_once():
    assert registry.demo_steps["order_import"].order == 45
    seed_platform()
    seed_customers()
    seed_inventory()
    out = StringIO()
    assert seed_order_import(stdout=out) == 5
    orders = Order.objects.filter(external_number__startswith="DEMO-TM-")
    assert orders.count() == 5  # 1001-1004 and 1006; 1005 names an unknown SKU
    assert orders.get(external_number="DEMO-TM-1001").status == OrderStatus.COMPLETED
    assert orders.get(external_number="DEMO-TM-1002").status == OrderStatus.SHIPPED
    assert (
        orders.get(external_number="DEMO-TM-1002")
        .customer.platform_accounts.filter(account_id="tm_linxiaoyu")
        .exists()
    )
    assert "rows with errors 1" in out.getvalue()
    assert seed_order_import(stdout=out) == 0
    assert orders.count() == 5
