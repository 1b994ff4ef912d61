"""Lockout after repeated failed sign-ins (django-axes) (R7.1.3)."""

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _fail(login, username, times):
    for _i in range(times):
        login(username, "Wrong-password-1")


def test_locked_after_five_failures_even_with_right_password(login, en_rep, client, english):
    """R7.1.3: after AXES_FAILURE_LIMIT failures the right password is refused and a page explains."""
    assert settings.AXES_FAILURE_LIMIT == 5
    _fail(login, "rep_en", 4)
    response = login("rep_en")
    assert response.status_code == 302  # the fifth attempt, right password: still allowed
    client.post(reverse("accounts:logout"))
    _fail(login, "rep_en", 5)
    response = login("rep_en")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    html = response.content.decode()
    assert "Sign-in temporarily locked" in html
    assert "Please try again in 15 minutes." in html
    assert "accounts/locked_out.html" in [t.name for t in response.templates]


def test_lockout_counts_any_letter_case(login, en_rep, client):
    _fail(login, "REP_EN", 3)
    _fail(login, "rep_en", 2)
    assert login("Rep_En").status_code == 429


def test_lockout_of_one_user_does_not_lock_another(login, en_rep, make_user):
    make_user(username="other", language="en")
    _fail(login, "rep_en", 5)
    assert login("other").status_code == 302


def test_password_reset_lifts_lockout(login, en_rep, client):
    _fail(login, "rep_en", 5)
    assert login("rep_en").status_code == 429
    client.post(reverse("accounts:password-reset"), {"email": en_rep.email})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line).strip()
    set_url = client.get(link).url
    client.post(set_url, {"new_password1": "Reset-Pass-2024x", "new_password2": "Reset-Pass-2024x"})
    assert login("rep_en", "Reset-Pass-2024x").status_code == 302
