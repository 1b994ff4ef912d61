"""Customer analysis pages in headless Chromium at phone, tablet and desktop width (R5.1.3, R5.6.2):
the overview, the rule form and the customer page's Analysis tab never overflow the screen, and a
rule created on a phone is listed. Screenshots go to reports/screenshots/.
"""

from decimal import Decimal

import pytest

from crm.accounts import roles
from customers.models import CustomerMetrics
from sales.models import AutoTagRule
from sales.services import analysis
from sales.services.analysis_rules import auto_tag_rule_create
from tests.browser.conftest import SCREENSHOTS, WIDTHS, assert_no_horizontal_overflow, login
from tests.customers.factories import CustomerFactory, TagFactory
from tests.factories import DEFAULT_PASSWORD

from .factories_analysis import orders_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.mark.parametrize("device", list(WIDTHS))
def test_analysis_pages_fit_every_width(device, open_page, make_user):
    manager = make_user(roles.SALES_MANAGER, username="analysismgr")
    customer = CustomerFactory(owner=manager, name="欧阳晓东（杭州恒通贸易有限公司采购部）")
    orders_for(customer, 2, 15, 40, 70, total="1288.50")
    auto_tag_rule_create(
        actor=manager,
        name="九十天内消费满一万元的高价值客户",
        metric=AutoTagRule.Metric.SPENT,
        min_amount=Decimal("10000"),
        window_days=90,
        tag=TagFactory(name="高消费"),
    )
    analysis.analysis_run_full(actor=manager)
    segment = CustomerMetrics.objects.get(customer=customer).segment
    page = open_page(device)
    login(page, "analysismgr", DEFAULT_PASSWORD)
    for name, url in [
        ("overview", "/sales/analysis/"),
        ("rule-form", "/sales/analysis/rules/new/"),
        ("customer-tab", f"/customers/{customer.pk}/?tab=analysis"),
        ("customers-by-segment", f"/customers/?segment={segment}&churn_risk=no"),
    ]:
        page.goto(url)
        assert_no_horizontal_overflow(page)
        if name == "customer-tab":
            assert page.locator(f'[data-segment="{segment}"]').count() == 1
        if name == "customers-by-segment":  # the list read through the analysis' index
            assert page.get_by_text(customer.name).count() >= 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"analysis-{name}-{device}.png"), full_page=True)


def test_create_a_rule_on_a_phone(open_page, make_user):
    make_user(roles.MARKETING, username="marketer")
    tag = TagFactory(name="复购")
    page = open_page("phone")
    login(page, "marketer", DEFAULT_PASSWORD)
    page.goto("/sales/analysis/rules/new/")
    page.fill("input[name=name]", "三单以上")
    page.select_option("select[name=metric]", "orders")
    page.fill("input[name=min_orders]", "3")
    page.select_option("select[name=tag]", str(tag.pk))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/sales/analysis/")
    assert "三单以上" in page.inner_text("#rule-table")
    assert AutoTagRule.objects.get(name="三单以上").min_orders == 3
