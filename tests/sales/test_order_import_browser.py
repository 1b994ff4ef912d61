"""Importing a platform order export in headless Chromium at phone, tablet and desktop width
(R5.1.3, R5.6.2).

A sales manager uploads the platform's .xlsx (Chinese column titles), keeps the suggested column
mapping, reads the preview and imports: the orders, their new customers and the stock reservations
are there, and the job page says so. Each step is checked to fit the screen; screenshots go to
reports/screenshots/.
"""

from decimal import Decimal

import pytest

from crm.accounts import roles
from crm.core.regions.loader import ensure_loaded
from customers.models import Customer
from sales.models import Order, StockLevel
from tests.browser.conftest import SCREENSHOTS, WIDTHS, assert_no_horizontal_overflow, login
from tests.factories import DEFAULT_PASSWORD

from .factories import ProductFactory
from .factories_inventory import default_warehouse, stocked
from .files.order_import_samples import PLATFORM_HEADERS, PLATFORM_ROWS, write_xlsx

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"order-import-{name}-{page.device_name}.png"), full_page=True)


@pytest.mark.parametrize("device", list(WIDTHS))
def test_upload_map_preview_and_import(device, open_page, make_user, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    ensure_loaded()
    make_user(roles.SALES_MANAGER, username="importmgr")
    warehouse = default_warehouse(name="杭州总仓")
    for sku, name, price in (
        ("TEA-001", "西湖龙井 250g", "199.00"),
        ("TEA-002", "安吉白茶 100g", "128.00"),
        ("CUP-001", "青瓷茶杯", "59.00"),
    ):
        stocked(
            product=ProductFactory(sku=sku, name=name, list_price=Decimal(price)),
            warehouse=warehouse,
            quantity="100",
        )
    export = write_xlsx(tmp_path / "天猫订单导出.xlsx", PLATFORM_HEADERS, PLATFORM_ROWS)

    page = open_page(device)
    login(page, "importmgr", DEFAULT_PASSWORD)
    page.goto("/sales/order-import/")
    assert page.locator("input[name=track_stock]").is_checked()  # stock moves unless told otherwise
    page.set_input_files("input[name=file]", str(export))
    assert_no_horizontal_overflow(page)
    shot(page, "upload")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/sales/order-import/*/map/")

    # The Chinese titles are recognised: the suggested mapping is kept.
    assert page.locator("select[name=col_0]").input_value() == "order_number"
    assert_no_horizontal_overflow(page)
    shot(page, "map")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/sales/order-import/*/preview/")
    assert page.locator("main").inner_text().count("3688123456789012345") >= 1
    assert not Order.objects.exists()  # the preview writes nothing
    assert_no_horizontal_overflow(page)
    shot(page, "preview")

    page.locator("main form[action$='/run/'] button[type=submit]").click()
    page.wait_for_url("**/jobs/**")
    page.wait_for_load_state()
    assert Order.objects.count() == 3
    assert Customer.objects.exists()
    assert (
        StockLevel.objects.filter(reserved__gt=0).exists()
        or StockLevel.objects.filter(on_hand__lt=100).exists()
    )
    assert_no_horizontal_overflow(page)
    shot(page, "done")
