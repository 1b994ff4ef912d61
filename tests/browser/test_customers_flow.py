"""A sales manager creates, finds, edits and merges customers on a phone (R5.1.1, R5.1.2, R5.6.2).

The duplicate warning appears while the phone number is typed; the list finds customers by a name
fragment and by the last four digits; the merge keeps one customer with both histories.
"""

import pytest

from crm.accounts import roles
from customers.models import Customer
from tests.factories import DEFAULT_PASSWORD

from .conftest import assert_no_horizontal_overflow, login

pytestmark = pytest.mark.django_db(transaction=True)


def create_customer(page, name, phone):
    page.goto("/customers/new/")
    page.fill("input[name=name]", name)
    page.fill("input[name=phones-0-number]", phone)
    page.locator("form button[type=submit].btn-primary").last.click()
    page.wait_for_load_state("networkidle")


def test_create_find_edit_merge_on_a_phone(open_page, screenshot, make_user, team):
    manager = make_user(roles.SALES_MANAGER, username="salesmgr", team=team)
    team.leader = manager
    team.save()
    page = open_page("phone")
    login(page, "salesmgr", DEFAULT_PASSWORD)

    create_customer(page, "测试客户甲", "138 0013 5678")
    first = Customer.objects.get(name="测试客户甲")
    assert page.url.endswith(f"/customers/{first.pk}/")
    assert "测试客户甲" in page.inner_text("main")
    assert "13800135678" not in page.content()  # masked until revealed
    assert_no_horizontal_overflow(page)
    screenshot(page, "customer-created")

    # The second customer with the same phone: the form warns while typing.
    page.goto("/customers/new/")
    page.fill("input[name=name]", "测试客户乙")
    page.locator("input[name=phones-0-number]").press_sequentially("13800135678", delay=20)
    warning = page.locator(".alert-warning:visible").filter(has_text="测试客户甲")
    warning.first.wait_for()
    screenshot(page, "customer-duplicate-warning")
    page.locator("form button[type=submit].btn-primary").last.click()
    page.wait_for_load_state("networkidle")
    second = Customer.objects.get(name="测试客户乙")

    # Find by a name fragment, then by the last four digits.
    page.goto("/customers/?q=客户甲")
    body = page.inner_text("main")
    assert "测试客户甲" in body
    assert "测试客户乙" not in body
    page.goto("/customers/?q=5678")
    body = page.inner_text("main")
    assert "测试客户甲" in body
    assert "测试客户乙" in body
    assert_no_horizontal_overflow(page)
    screenshot(page, "customer-list-search")

    # Edit the first customer's name.
    page.goto(f"/customers/{first.pk}/edit/")
    page.fill("input[name=name]", "测试客户甲（改）")
    page.locator("form button[type=submit].btn-primary").last.click()
    page.wait_for_load_state("networkidle")
    assert "测试客户甲（改）" in page.inner_text("main")

    # Merge the second into the first.
    page.goto(f"/customers/{first.pk}/merge/{second.pk}/")
    assert_no_horizontal_overflow(page)
    screenshot(page, "customer-merge-preview")
    page.locator(
        "form[method=post] button[type=submit].btn-primary, form[method=post] button.btn-danger"
    ).last.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/customers/{first.pk}/")
    second.refresh_from_db()
    assert second.merged_into_id == first.pk
    assert second.deleted_at is not None
    page.goto("/customers/?q=5678")
    results = page.locator("main table").inner_text()  # the merge message may still show above it
    assert "测试客户乙" not in results
    assert "测试客户甲（改）" in results
    screenshot(page, "customer-after-merge")


def test_customer_list_fits_every_width(device, open_page, screenshot, make_user, team):
    """R5.6.2: the list with its default columns never widens the page (cards on phones, scroll box above)."""
    from tests.customers.factories import CustomerFactory

    manager = make_user(roles.SALES_MANAGER, username="salesmgr", team=team)
    for i in range(8):
        CustomerFactory(
            owner=manager, name=f"杭州云帆贸易有限公司{i}", phones=[{"number": f"1380013{i:04d}"}]
        )
    page = open_page(device)
    login(page, "salesmgr", DEFAULT_PASSWORD)
    page.goto("/customers/")
    assert page.locator("#customer-table tbody tr").count() == 8
    assert_no_horizontal_overflow(page)
    screenshot(page, "customer-list")
