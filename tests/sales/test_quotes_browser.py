"""Quote and approval pages in headless Chromium at phone, tablet and desktop width (R5.2.1,
R5.6.2): no page is wider than the screen; a rep writes a discounted quote on a phone, the manager
approves it from the approvals list on a phone, the rep sends it. Screenshots go to
reports/screenshots/."""

from decimal import Decimal

import pytest

from crm.accounts import roles
from sales.services import approvals
from tests.browser.conftest import SCREENSHOTS, WIDTHS, assert_no_horizontal_overflow, login
from tests.customers.factories import CustomerFactory
from tests.factories import DEFAULT_PASSWORD

from .factories import ProductFactory
from .factories_quotes import line, make_quote

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def people(make_user, team):
    manager = make_user(roles.SALES_MANAGER, username="qmgr", team=team)
    team.leader = manager
    team.save(update_fields=["leader"])
    rep = make_user(roles.SALES_REP, username="qrep", team=team, manager=manager)
    return rep, manager


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"quotes-{name}-{page.device_name}.png"), full_page=True)


@pytest.mark.parametrize("device", list(WIDTHS))
def test_quote_pages_fit_every_width(device, open_page, people):
    rep, _manager = people
    customer = CustomerFactory(owner=rep, name="杭州西湖示例贸易有限公司（华东区域总代理）")
    products = [
        ProductFactory(
            sku=f"DRS-{n:03d}", name="真丝印花连衣裙（长款，含腰带，夏季新品）", list_price=Decimal("1299.00")
        )
        for n in range(4)
    ]
    pending = make_quote(
        owner=rep,
        customer=customer,
        lines=[line(p, "3", "0.2") for p in products],
        title="年度大客户采购报价",
    )
    request = approvals.approval_request(actor=rep, document=pending)
    make_quote(owner=rep, customer=customer, lines=[line(products[0], "1")], send=True)
    page = open_page(device)
    login(page, "qmgr", DEFAULT_PASSWORD)
    for name, url in [
        ("list", "/sales/quotes/"),
        ("detail", pending.get_absolute_url()),
        ("approvals", "/sales/approvals/"),
        ("approval", f"/sales/approvals/{request.pk}/"),
        ("rules", "/sales/approvals/settings/"),
        ("verify", "/sales/quotes/verify/"),
        ("send", f"/sales/quotes/{pending.pk}/send/"),
    ]:
        page.goto(url)
        assert page.locator("main").count() == 1, name
        if name in ("list", "detail", "approvals", "approval"):
            assert pending.number in page.inner_text("main"), name
        assert_no_horizontal_overflow(page)
        _shot(page, name)


def test_quote_written_on_a_phone_approved_on_a_phone_and_sent(open_page, people):
    rep, _manager = people
    customer = CustomerFactory(owner=rep, name="宁波甬江贸易")
    ProductFactory(sku="TEA-001", name="西湖龙井 250g", list_price=Decimal("200.00"))
    ProductFactory(sku="TEA-002", name="安吉白茶 250g", list_price=Decimal("150.00"))

    page = open_page("phone")
    login(page, "qrep", DEFAULT_PASSWORD)
    page.goto(f"/sales/quotes/new/?customer={customer.pk}")
    page.fill("#id_title", "茶叶报价")
    page.fill("#id_lines-0-sku", "TEA-001")
    page.fill("#id_lines-0-quantity", "10")
    page.fill("#id_lines-0-discount", "20")
    page.click("[data-formset-add=lines]")
    page.fill("#id_lines-1-sku", "tea-002")
    page.fill("#id_lines-1-quantity", "2")
    page.click("#quote-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#approval-needed").is_visible()
    _shot(page, "phone-flow-draft")
    page.click("#approval-needed button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#approval-pending").is_visible()

    boss = open_page("phone")
    login(boss, "qmgr", DEFAULT_PASSWORD)
    boss.goto("/sales/approvals/")
    card = boss.locator("[data-approval]").first
    card.locator("textarea").fill("同意，本月有效")
    _shot(boss, "phone-flow-inbox")
    card.locator("button[value=approve]").click()
    boss.wait_for_load_state("networkidle")
    assert boss.locator("[data-approval]").count() == 0

    page.reload()
    assert "同意，本月有效" in page.inner_text("#quote-history")
    page.click("a[href$='/send/']")
    page.wait_for_load_state("networkidle")
    page.click("#quote-send-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#quote-status").inner_text().strip() in ("已发送", "Sent")
    assert_no_horizontal_overflow(page)
    _shot(page, "phone-flow-sent")
