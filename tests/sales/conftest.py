"""Sales tests read messages in English unless they switch language themselves.

Services raise messages in the active language; pages render in the signed-in user's language
(zh-hans by default), so view tests that read English text sign in users with language="en".
"""

import pytest
from django.utils import translation

from tests.browser.conftest import open_page  # noqa: F401  (the sales pages' browser tests use it)


@pytest.fixture(autouse=True)
def english_messages():
    with translation.override("en"):
        yield


@pytest.fixture
def importer(make_user, team):
    """A sales manager who imports orders (reads English), with the regions loaded."""
    from crm.accounts import roles
    from crm.core.regions.loader import ensure_loaded

    ensure_loaded()
    return make_user(roles.SALES_MANAGER, username="importer", team=team, language="en")
