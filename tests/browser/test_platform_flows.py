"""Main platform flows in headless Chromium at phone, tablet and desktop widths (R5.6.1, R5.6.2, R8.2).

Each role signs in and lands on a home page that fits the screen; the language switch changes
the whole page and is remembered; administrators reach the audit ledger. Screenshots are kept in
reports/screenshots/ for people to look at.
"""

import pytest

from crm.accounts import roles
from crm.accounts.models import User
from tests.factories import DEFAULT_PASSWORD

from .conftest import assert_no_horizontal_overflow, login

pytestmark = pytest.mark.django_db(transaction=True)

ROLE_USERS = {
    roles.ADMINISTRATOR: "admin",
    roles.SALES_MANAGER: "salesmgr",
    roles.SALES_REP: "sales1",
    roles.MARKETING: "marketing",
    roles.SERVICE_MANAGER: "servicemgr",
    roles.SERVICE_AGENT: "agent1",
    roles.ANALYST: "analyst",
}


@pytest.mark.parametrize("role", list(ROLE_USERS))
def test_each_role_signs_in_and_sees_home(role, device, open_page, screenshot, make_user):
    username = ROLE_USERS[role]
    make_user(role, username=username, display_name=f"测试{username}")
    page = open_page(device)
    login(page, username, DEFAULT_PASSWORD)
    assert "/accounts/login/" not in page.url
    html_lang = page.get_attribute("html", "lang")
    assert html_lang == "zh-hans"
    body = page.inner_text("body")
    assert f"测试{username}" in body
    assert_no_horizontal_overflow(page)
    screenshot(page, f"home-{username}")


def test_failed_sign_in_shows_error(device, open_page, screenshot, make_user):
    make_user(roles.SALES_REP, username="sales1")
    page = open_page(device)
    login(page, "sales1", "wrong-password")
    assert "/accounts/login/" in page.url
    assert page.locator(".alert-danger, .invalid-feedback, .errorlist").count() >= 1
    assert_no_horizontal_overflow(page)
    screenshot(page, "login-failed")


def test_switch_language_and_back(device, open_page, screenshot, make_user):
    user = make_user(roles.SALES_REP, username="sales1")
    page = open_page(device)
    login(page, "sales1", DEFAULT_PASSWORD)
    page.locator("header button:has(.bi-translate)").first.click()
    page.locator("button[name=language][value=en]").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "lang") == "en"
    assert "Good" in page.inner_text("main")
    user.refresh_from_db()
    assert user.language == "en"
    assert_no_horizontal_overflow(page)
    screenshot(page, "home-english")
    # The choice is remembered in a new session.
    again = open_page(device)
    login(again, "sales1", DEFAULT_PASSWORD)
    assert again.get_attribute("html", "lang") == "en"
    again.locator("header button:has(.bi-translate)").first.click()
    again.locator("button[name=language][value=zh-hans]").first.click()
    again.wait_for_load_state("networkidle")
    assert again.get_attribute("html", "lang") == "zh-hans"
    assert User.objects.get(pk=user.pk).language == "zh-hans"


def test_navigation_menu_reaches_pages(device, open_page, screenshot, make_user):
    make_user(roles.ADMINISTRATOR, username="admin")
    page = open_page(device)
    login(page, "admin", DEFAULT_PASSWORD)
    if device != "desktop":
        page.locator("button[data-bs-toggle=offcanvas][data-bs-target='#crm-sidebar']").click()
        page.locator("#crm-sidebar.show").wait_for()
        screenshot(page, "menu-open")
    page.locator("#crm-sidebar a[href='/audit/']").first.click()
    page.wait_for_url("**/audit/")
    assert page.locator("main h1").count() == 1
    assert_no_horizontal_overflow(page)
    screenshot(page, "audit-list")


def test_profile_and_two_factor_pages_fit(device, open_page, screenshot, make_user):
    make_user(roles.SALES_MANAGER, username="salesmgr", mobile="13812345678")
    page = open_page(device)
    login(page, "salesmgr", DEFAULT_PASSWORD)
    page.goto("/accounts/profile/")
    assert page.locator("form").count() >= 1
    assert_no_horizontal_overflow(page)
    screenshot(page, "profile")
    page.goto("/accounts/two-factor/")
    assert page.locator("img[src^='data:image/svg']").count() == 1
    assert_no_horizontal_overflow(page)
    screenshot(page, "two-factor-setup")


def test_notifications_and_jobs_pages_fit(device, open_page, screenshot, make_user):
    from crm.core.notifications.services import notify

    user = make_user(roles.SALES_MANAGER, username="salesmgr")
    notify(recipients=[user], title="欢迎使用电商CRM", body="这是一条测试通知。", url="/")
    page = open_page(device)
    login(page, "salesmgr", DEFAULT_PASSWORD)
    assert page.locator("header .badge").first.inner_text().strip() == "1"
    page.goto("/notifications/")
    assert "欢迎使用电商CRM" in page.inner_text("main")
    assert_no_horizontal_overflow(page)
    screenshot(page, "notifications")
    page.goto("/jobs/")
    assert_no_horizontal_overflow(page)
    screenshot(page, "jobs")
