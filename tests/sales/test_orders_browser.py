"""From quote to paid order in headless Chromium at phone, tablet and desktop width (R5.2.1, R5.6.2).

A sales rep writes a quote, marks it sent and turns the customer's acceptance into an order in one
click (stock reserved); their manager records the payment on the order page and the order is
paid. On the way, the order page, the order list and the customer's orders tab are checked to fit
the screen (tables become cards or scroll inside their box). Screenshots go to reports/screenshots/.
"""

from decimal import Decimal

import pytest

from crm.accounts import roles
from sales.models import Order, OrderStatus, Quote, StockLevel
from tests.browser.conftest import SCREENSHOTS, WIDTHS, assert_no_horizontal_overflow, login
from tests.customers.factories import CustomerFactory
from tests.factories import DEFAULT_PASSWORD, TeamFactory

from .factories_inventory import default_warehouse, stocked

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"orders-{name}-{page.device_name}.png"), full_page=True)


@pytest.mark.parametrize("device", list(WIDTHS))
def test_quote_to_paid_order(device, open_page, make_user):
    team = TeamFactory(name="华东一组")
    rep = make_user(roles.SALES_REP, username="bizrep", team=team)
    manager = make_user(roles.SALES_MANAGER, username="bizmgr", team=team)
    team.leader = manager
    team.save(update_fields=["leader"])
    warehouse = default_warehouse(name="杭州总仓")
    product = stocked(
        warehouse=warehouse,
        quantity="50",
        sku="TEA-LJ-01",
        name="西湖龙井 明前特级 250g",
        list_price=Decimal("368.00"),
    )
    customer = CustomerFactory(owner=rep, name="杭州云帆贸易有限公司")

    # The rep writes the quote.
    page = open_page(device)
    login(page, "bizrep", DEFAULT_PASSWORD)
    page.goto(f"/sales/quotes/new/?customer={customer.pk}")
    page.fill("input[name=lines-0-sku]", "TEA-LJ-01")
    page.fill("input[name=lines-0-quantity]", "3")
    page.locator("#quote-form button[type=submit]").click()
    page.wait_for_url("**/sales/quotes/*/")
    quote = Quote.objects.get()
    assert quote.total == Decimal("1104.00")

    # Marked sent (no e-mail), then the customer's acceptance becomes an order in one click.
    page.goto(f"/sales/quotes/{quote.pk}/send/")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url(f"**/sales/quotes/{quote.pk}/")
    page.locator("#quote-convert").click()
    page.wait_for_url("**/sales/orders/*/")
    order = Order.objects.get()
    assert order.quote_id == quote.pk
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total_amount == Decimal("1104.00")
    assert StockLevel.objects.get(product=product, warehouse=warehouse).reserved == 3
    main = page.inner_text("main")
    assert order.number in main
    assert "TEA-LJ-01" in main
    assert page.locator("#order-payment-form, #payment-panel").count() == 0  # reps do not book payments
    assert_no_horizontal_overflow(page)
    shot(page, "pending")

    # The manager records the payment from the order page.
    page = open_page(device)
    login(page, "bizmgr", DEFAULT_PASSWORD)
    page.goto(order.get_absolute_url())
    page.locator("#payment-panel summary").click()
    assert page.input_value("#payment-form input[name=amount]") == "1104.00"
    page.select_option("#payment-form select[name=method]", "bank_transfer")
    page.fill("#payment-form input[name=reference]", "HZ-20261124-01")
    page.locator("#payment-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.paid_amount == Decimal("1104.00")
    assert page.locator("[data-status=paid]").first.is_visible()
    assert "HZ-20261124-01" in page.inner_text("#order-payments")
    assert_no_horizontal_overflow(page)
    shot(page, "paid")

    # The list and the customer's orders tab fit the screen too.
    page.goto(f"/sales/orders/?q={order.number}")
    assert order.number in page.inner_text("#order-table")
    assert_no_horizontal_overflow(page)
    shot(page, "list")
    page.goto(f"/customers/{customer.pk}/?tab=orders")
    assert order.number in page.inner_text("#customer-orders")
    assert_no_horizontal_overflow(page)
    shot(page, "customer-tab")
    for name, url in (
        ("new", f"/sales/orders/new/?customer={customer.pk}"),
        ("receivables", "/sales/receivables/"),
    ):
        page.goto(url)
        assert_no_horizontal_overflow(page)
        shot(page, name)
