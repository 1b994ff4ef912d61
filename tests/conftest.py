import os
from pathlib import Path

import pytest

from crm.accounts import roles

from .factories import DEFAULT_PASSWORD, TeamFactory, UserFactory

# Browser tests (tests/browser and a few others) share one headless Chromium per test process:
# Playwright's sync API allows a single running instance in a thread.
CHROMIUM = os.environ.get("CRM_BROWSER", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the test session (skipped when there is none)."""
    # Playwright's sync API runs an event loop; Django would refuse ORM calls from the test body.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"No Chromium at {CHROMIUM}: install Debian's chromium or set CRM_BROWSER")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def make_user(db):
    """make_user(role="Sales rep", team=..., **fields) -> a saved user in that role."""

    def _make(role=None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return _make


@pytest.fixture
def team(db):
    return TeamFactory(name="华东一组")


@pytest.fixture
def admin_user(make_user):
    return make_user(roles.ADMINISTRATOR, username="admin1")


@pytest.fixture
def rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep1", team=team)


@pytest.fixture
def manager(make_user, team):
    user = make_user(roles.SALES_MANAGER, username="manager1", team=team)
    team.leader = user
    team.save(update_fields=["leader"])
    return user


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user (no 2FA pending)."""

    def _login(user):
        client.force_login(user)
        return client

    return _login
