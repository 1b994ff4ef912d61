"""Sales tests read messages in English unless they switch language themselves.

Services raise messages in the active language; pages render in the signed-in user's language
(zh-hans by default), so view tests that read English text sign in users with language="en".
"""

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english_messages():
    with translation.override("en"):
        yield
