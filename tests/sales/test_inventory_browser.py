"""Catalogue and stock pages in headless Chromium at phone, tablet and desktop width (R5.2.1,
R5.6.2): no page is wider than the screen (tables become cards or scroll inside their box), and
a stock receipt typed on a phone lands in the stock list. Screenshots go to reports/screenshots/.
"""

from decimal import Decimal

import pytest

from crm.accounts import roles
from sales.models import StockLevel
from tests.browser.conftest import SCREENSHOTS, WIDTHS, assert_no_horizontal_overflow, login
from tests.factories import DEFAULT_PASSWORD

from .factories import CategoryFactory, ProductFactory
from .factories_inventory import default_warehouse, stocked

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


PAGES = [
    ("products", "/sales/products/"),
    ("stock", "/sales/inventory/"),
    ("valuation", "/sales/inventory/valuation/"),
    ("moves", "/sales/inventory/moves/"),
    ("warehouses", "/sales/inventory/warehouses/"),
]


@pytest.mark.parametrize("device", list(WIDTHS))
def test_inventory_pages_fit_every_width(device, open_page, make_user):
    make_user(roles.SALES_MANAGER, username="stockmgr")
    warehouse = default_warehouse(name="杭州总仓")
    category = CategoryFactory(name="连衣裙")
    product = stocked(
        warehouse=warehouse,
        quantity="120",
        sku="DEMO-DRS-001",
        name="真丝印花连衣裙（长款，含腰带）",
        category=category,
        low_stock_threshold=Decimal("5"),
    )
    page = open_page(device)
    login(page, "stockmgr", DEFAULT_PASSWORD)
    for name, url in [*PAGES, ("product", product.get_absolute_url())]:
        page.goto(url)
        expected = "杭州总仓" if name in ("valuation", "warehouses") else "DEMO-DRS-001"
        assert expected in page.inner_text("main"), name
        assert_no_horizontal_overflow(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"inventory-{name}-{device}.png"), full_page=True)


def test_receive_stock_on_a_phone(open_page, make_user):
    make_user(roles.SALES_MANAGER, username="stockmgr")
    warehouse = default_warehouse(name="杭州总仓")
    product = ProductFactory(sku="PHONE-1")
    page = open_page("phone")
    login(page, "stockmgr", DEFAULT_PASSWORD)
    page.goto(f"/sales/inventory/receive/?sku={product.sku}")
    page.fill("input[name=quantity]", "7")
    page.fill("input[name=reason]", "到货 PO-77")
    page.locator("form.crm-form button[type=submit]").click()
    page.wait_for_url(f"**{product.get_absolute_url()}")
    assert "PO-77" in page.inner_text("main")
    assert StockLevel.objects.get(product=product, warehouse=warehouse).on_hand == 7
    assert_no_horizontal_overflow(page)
