"""Browser: duplicates screen and merge preview fit a 390px phone; a merge goes through (R5.1.1, R5.6.2)."""

import pytest

from crm.accounts import roles
from customers.models import Customer
from tests.browser.conftest import assert_no_horizontal_overflow, login, open_page, screenshot  # noqa: F401
from tests.factories import DEFAULT_PASSWORD

from .factories import CustomerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_duplicates_and_merge_on_a_phone(open_page, screenshot, make_user, team):  # noqa: F811
    manager = make_user(roles.SALES_MANAGER, username="dupmgr", team=team)
    rep = make_user(roles.SALES_REP, username="duprep", team=team)
    first = CustomerFactory(
        name="欧阳明月有限责任公司华东区域分公司", owner=rep, phones=[{"number": "13712345678"}]
    )
    second = CustomerFactory(
        name="欧阳明月", owner=rep, phones=[{"number": "+86 137 1234 5678"}], wechat_id="ouyang_mingyue_2024"
    )
    page = open_page("phone")
    login(page, manager.username, DEFAULT_PASSWORD)
    page.goto("/customers/duplicates/?kind=phone")
    assert page.locator(f'a[href="/customers/{first.pk}/merge/{second.pk}/"]').count() == 1
    assert_no_horizontal_overflow(page)
    screenshot(page, "customers-duplicates")
    page.locator(f'a[href="/customers/{first.pk}/merge/{second.pk}/"]').click()
    page.wait_for_load_state("networkidle")
    assert_no_horizontal_overflow(page)
    screenshot(page, "customers-merge-preview")
    page.locator("#merge-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert page.url.rstrip("/").endswith(f"/customers/{first.pk}")
    assert Customer.objects.get(pk=second.pk).merged_into_id == first.pk
