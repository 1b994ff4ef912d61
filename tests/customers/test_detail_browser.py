"""The customer page in headless Chromium at phone width (R5.1.1, R5.6.2, R7.2.4).

The header stacks, the tab list scrolls sideways instead of widening the page, htmx swaps tabs
in place and "show full number" reveals the value where it stood. Screenshots go to
reports/screenshots/.
"""

import pytest

from crm.accounts import roles
from tests.browser.conftest import SCREENSHOTS, assert_no_horizontal_overflow, login
from tests.factories import DEFAULT_PASSWORD, TeamFactory

from .factories import CustomerFactory, FollowUpFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def phone_page(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.device_name = "phone"
    yield page
    context.close()


def test_customer_page_on_a_phone(phone_page, make_user):
    team = TeamFactory(name="华东一组")
    make_user(roles.SALES_MANAGER, username="salesmgr", team=team)
    rep = make_user(roles.SALES_REP, username="sales1", team=team)
    customer = CustomerFactory(
        owner=rep,
        name="杭州云帆贸易有限公司",
        kind="company",
        phones=[{"number": "13812345678"}],
        emails=[{"address": "buyer@example.com"}],
        addresses=[{"region": "330106", "street": "文三路 188 号"}],
    )
    for i in range(3):
        FollowUpFactory(customer=customer, author=rep, content=f"第{i + 1}次电话回访，客户询问新品价格。")
    page = phone_page
    login(page, "salesmgr", DEFAULT_PASSWORD)
    page.goto(f"/customers/{customer.pk}/")
    assert "138****5678" in page.inner_text("main")
    assert "13812345678" not in page.content()
    assert_no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "customer-detail-phone.png"), full_page=True)

    # The tab list scrolls inside itself.
    tabs = page.locator("#customer-tabs .nav-tabs")
    assert tabs.evaluate("el => el.scrollWidth > el.clientWidth")

    # htmx: a tab swaps in place and the URL follows.
    page.locator("#customer-tabs a[href='?tab=followups']").click()
    page.wait_for_url("**?tab=followups")
    page.wait_for_selector("text=第1次电话回访")
    assert_no_horizontal_overflow(page)
    page.screenshot(path=str(SCREENSHOTS / "customer-detail-followups-phone.png"), full_page=True)

    # "Show full number" reveals the value in place (audited by the service).
    page.goto(f"/customers/{customer.pk}/")
    page.locator("section.card .crm-sensitive button").first.click()
    page.wait_for_selector("text=13812345678")
    assert page.url.endswith(f"/customers/{customer.pk}/")
