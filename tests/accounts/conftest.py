import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP

from crm.accounts import roles
from crm.accounts.services import totp_device_confirmed


@pytest.fixture
def english(client):
    """Requests from an English browser, so messages can be compared with the English source."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def en_rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep_en", language="en", team=team)


@pytest.fixture
def login(client, password):
    """login(username, password=..., **extra_post) -> response of the sign-in POST."""

    def _login(username, pw=None, *, follow=False, **extra):
        data = {"username": username, "password": pw or password, **extra}
        return client.post(reverse("accounts:login"), data, follow=follow)

    return _login


def totp_code(device, *, offset_steps: int = 0) -> str:
    """The code the authenticator app would show now (or ``offset_steps`` periods later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def next_code(device) -> str:
    """A code the device has not accepted yet, as if the next 30-second period had begun.

    django-otp refuses a code from a period it already accepted (replay protection), and tests
    run faster than the clock: forget the last accepted period instead of sleeping.
    """
    device.refresh_from_db()
    device.last_t = -1
    device.save(update_fields=["last_t"])
    return totp_code(device)


@pytest.fixture
def sign_in_verified(client):
    """sign_in_verified(user, device) -> client signed in and past the second factor."""

    def _sign_in(user, device):
        client.force_login(user)
        response = client.post(reverse("accounts:two-factor-verify"), {"token": next_code(device)})
        assert response.status_code == 302
        return client

    return _sign_in


@pytest.fixture
def enable_2fa(client, password):
    """enable_2fa(user) -> (device, backup codes): sets up 2FA through the pages, then signs out."""

    def _enable(user):
        client.force_login(user)
        client.get(reverse("accounts:two-factor-setup"))
        device = user.totpdevice_set.get(confirmed=False)
        response = client.post(reverse("accounts:two-factor-setup"), {"token": totp_code(device)})
        assert response.status_code == 302
        codes = client.get(reverse("accounts:two-factor-setup")).context["new_backup_codes"]
        client.post(reverse("accounts:logout"))
        return totp_device_confirmed(user=user), codes

    return _enable
