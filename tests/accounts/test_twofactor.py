"""Two-factor authentication with TOTP and backup codes (R7.1.3 authenticity)."""

import pytest
from django.conf import settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.accounts import roles, twofactor

from .conftest import next_code, totp_code

pytestmark = pytest.mark.django_db

SETUP = reverse("accounts:two-factor-setup")
VERIFY = reverse("accounts:two-factor-verify")
PROFILE = reverse("accounts:profile")
LOGIN = reverse("accounts:login")


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    # django-otp doubles a delay after each wrong code; tests enter codes back to back.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def test_setup_page_shows_qr_code_and_secret(client_for, en_rep):
    """R7.1.3: an unconfirmed device is created; QR code (server-side SVG) and base32 secret shown."""
    client = client_for(en_rep)
    response = client.get(SETUP)
    assert response.status_code == 200
    device = TOTPDevice.objects.get(user=en_rep)
    assert device.confirmed is False
    assert response.context["qr_code"].startswith("data:image/svg+xml;base64,")
    assert response.context["secret"].replace(" ", "") == twofactor.secret_base32(device).replace(" ", "")
    assert response.context["secret"] in response.content.decode()
    # Reloading keeps the same secret (no pile of devices).
    client.get(SETUP)
    assert TOTPDevice.objects.filter(user=en_rep).count() == 1


def test_setup_rejects_wrong_code(client_for, en_rep, english):
    client = client_for(en_rep)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=en_rep)
    wrong = f"{(int(totp_code(device)) + 1) % 1000000:06d}"
    response = client.post(SETUP, {"token": wrong})
    assert response.status_code == 200
    assert "This code is wrong or has expired" in str(response.context["form"].errors["token"])
    device.refresh_from_db()
    assert device.confirmed is False
    response = client.post(SETUP, {"token": "12ab"})
    assert "token" in response.context["form"].errors


def test_setup_with_real_code_enables_and_shows_backup_codes_once(client_for, en_rep):
    """R7.1.3: the user confirms with a code computed from the device key; 10 backup codes shown once."""
    client = client_for(en_rep)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=en_rep)
    response = client.post(SETUP, {"token": totp_code(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.session[twofactor.SESSION_VERIFY] is False
    response = client.get(SETUP)
    codes = response.context["new_backup_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert codes[0] in response.content.decode()
    assert StaticToken.objects.filter(device__user=en_rep).count() == 10
    assert response.context["enabled"] is True
    # Shown only once.
    assert client.get(SETUP).context["new_backup_codes"] is None
    # Session counts as verified: pages open.
    assert client.get(PROFILE).context["two_factor"].enabled is True


def test_next_login_requires_verification(enable_2fa, en_rep, login, client, english):
    """R7.1.3: with a device, password alone is not enough: every page sends to the verify page."""
    device, _codes = enable_2fa(en_rep)
    response = login("rep_en", next=PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(VERIFY)
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(VERIFY)
    response = client.get(SETUP)
    assert response.url.startswith(VERIFY)

    response = client.post(f"{VERIFY}?next={PROFILE}", {"token": "000000", "next": PROFILE})
    assert response.status_code == 200
    assert "This code is wrong or has expired." in str(response.context["form"].errors["token"])
    assert client.get(PROFILE).status_code == 302

    response = client.post(VERIFY, {"token": totp_code(device, offset_steps=1), "next": PROFILE})
    assert response.status_code == 302
    assert response.url == PROFILE
    assert client.get(PROFILE).status_code == 200


def test_verify_refuses_open_redirect(enable_2fa, en_rep, login, client):
    device, _codes = enable_2fa(en_rep)
    login("rep_en")
    response = client.post(
        VERIFY, {"token": totp_code(device, offset_steps=1), "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response.url == reverse("core:home")


def test_backup_code_works_once(enable_2fa, en_rep, login, client):
    """R7.1.3: a backup code signs in once, then is spent."""
    _device, codes = enable_2fa(en_rep)
    login("rep_en")
    response = client.post(VERIFY, {"token": codes[0].upper(), "next": PROFILE})
    assert response.status_code == 302
    assert response.url == PROFILE
    assert StaticToken.objects.filter(device__user=en_rep).count() == 9
    client.post(reverse("accounts:logout"))

    login("rep_en")
    response = client.post(VERIFY, {"token": codes[0], "next": PROFILE})
    assert response.status_code == 200
    assert client.get(PROFILE).status_code == 302


def test_verify_failure_limit_signs_out(enable_2fa, en_rep, login, client, english):
    _device, _codes = enable_2fa(en_rep)
    login("rep_en")
    for _i in range(4):
        assert client.post(VERIFY, {"token": "000000"}).status_code == 200
    response = client.post(VERIFY, {"token": "000000"}, follow=True)
    assert response.redirect_chain[-1][0] == LOGIN
    assert "_auth_user_id" not in client.session
    assert "Too many wrong codes" in " ".join(str(m) for m in response.context["messages"])


def test_verify_page_without_pending_check_redirects(client_for, en_rep):
    response = client_for(en_rep).get(VERIFY)
    assert response.status_code == 302


def test_verify_requires_login(client):
    response = client.get(VERIFY)
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_setup_requires_login(client):
    assert client.get(SETUP).url.startswith(LOGIN)


def test_regenerate_backup_codes_invalidates_old(enable_2fa, en_rep, sign_in_verified):
    device, codes = enable_2fa(en_rep)
    client = sign_in_verified(en_rep, device)
    response = client.post(SETUP, {"action": "regenerate"})
    assert response.status_code == 302
    new_codes = client.get(SETUP).context["new_backup_codes"]
    assert len(new_codes) == 10
    stored = set(StaticToken.objects.filter(device__user=en_rep).values_list("token", flat=True))
    assert stored == set(new_codes)
    assert not stored & set(codes)


def test_disable_needs_password_and_code(enable_2fa, en_rep, sign_in_verified, password, english):
    device, _codes = enable_2fa(en_rep)
    client = sign_in_verified(en_rep, device)
    response = client.post(SETUP, {"action": "disable", "password": "wrong", "token": next_code(device)})
    assert "password" in response.context["disable_form"].errors
    response = client.post(SETUP, {"action": "disable", "password": password, "token": "000000"})
    assert "token" in response.context["disable_form"].errors
    assert TOTPDevice.objects.filter(user=en_rep, confirmed=True).exists()
    response = client.post(SETUP, {"action": "disable", "password": password, "token": next_code(device)})
    assert response.status_code == 302
    assert response.url == PROFILE
    assert not TOTPDevice.objects.filter(user=en_rep).exists()
    assert not StaticToken.objects.filter(device__user=en_rep).exists()


# Administrators ------------------------------------------------------------------------------------


def test_admin_forced_to_set_up_when_required(settings, make_user, login, client):
    """R7.1.3: with REQUIRE_2FA_FOR_ADMINS an Administrator must set up 2FA before anything else."""
    settings.REQUIRE_2FA_FOR_ADMINS = True
    make_user(roles.ADMINISTRATOR, username="boss", language="en")
    response = login("boss", next=PROFILE)
    assert response.url.startswith(SETUP)
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(SETUP)
    page = client.get(response.url)
    assert page.context["required"] is True
    device = TOTPDevice.objects.get(user__username="boss")
    response = client.post(SETUP, {"token": totp_code(device), "next": PROFILE})
    assert response.status_code == 302
    assert client.get(SETUP).context["continue_url"] == PROFILE
    assert client.get(PROFILE).status_code == 200


def test_admin_not_forced_when_setting_off(settings, make_user, login, client):
    settings.REQUIRE_2FA_FOR_ADMINS = False
    make_user(roles.ADMINISTRATOR, username="boss2")
    login("boss2")
    assert client.get(PROFILE).status_code == 200


def test_rep_not_forced_when_setting_on(settings, en_rep, login, client):
    settings.REQUIRE_2FA_FOR_ADMINS = True
    login("rep_en")
    assert client.get(PROFILE).status_code == 200


def test_admin_cannot_disable_when_required(settings, make_user, enable_2fa, sign_in_verified, password):
    admin = make_user(roles.ADMINISTRATOR, username="boss3")
    device, _codes = enable_2fa(admin)
    settings.REQUIRE_2FA_FOR_ADMINS = True
    client = sign_in_verified(admin, device)
    page = client.get(SETUP)
    assert page.context["can_disable"] is False
    response = client.post(SETUP, {"action": "disable", "password": password, "token": next_code(device)})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=admin, confirmed=True).exists()
