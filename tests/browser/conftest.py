"""Browser tests: Playwright driving Debian's Chromium (headless) against pytest-django's live server.

Set CRM_BROWSER to another Chromium binary if it is not at /usr/bin/chromium; without one, these
tests are skipped with a message (the README's test command installs it on Debian/Ubuntu).
Screenshots go to reports/screenshots/ (kept out of git) so a person can look at every layout.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: F401  (the browser fixture lives there)

WIDTHS = {"phone": 390, "tablet": 820, "desktop": 1440}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(params=list(WIDTHS))
def device(request):
    """Each browser test using this runs at phone, tablet and desktop width."""
    return request.param


@pytest.fixture
def open_page(browser, live_server):
    """open_page(device) -> a fresh page (own cookies) with that device's viewport."""
    contexts = []

    def _open(device_name: str, locale: str = "zh-CN"):
        context = browser.new_context(
            viewport={"width": WIDTHS[device_name], "height": 900},
            base_url=live_server.url,
            locale=locale,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.device_name = device_name
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    def _shot(page, name: str):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{page.device_name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


def login(page, username: str, password: str):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")


def assert_no_horizontal_overflow(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the {page.device_name} viewport"
