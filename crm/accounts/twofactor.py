"""Two-factor authentication with TOTP (django-otp).

At login we note in the session whether this user must pass a second factor (they have a
confirmed TOTP device) or must first set one up (they are an Administrator and
REQUIRE_2FA_FOR_ADMINS is on). TwoFactorMiddleware then keeps them on the verify or setup page
until done, so the check costs no query on ordinary requests.
"""

import base64

import qrcode
from django.conf import settings
from django_otp import user_has_device
from qrcode.image.svg import SvgPathImage

from .roles import ADMINISTRATOR

SESSION_VERIFY = "2fa_verify_required"
SESSION_SETUP = "2fa_setup_required"


def is_administrator(user) -> bool:
    return user.is_superuser or user.groups.filter(name=ADMINISTRATOR).exists()


def must_set_up(user) -> bool:
    return bool(settings.REQUIRE_2FA_FOR_ADMINS) and is_administrator(user) and not user_has_device(user)


def remember_requirement(request, user) -> None:
    request.session[SESSION_VERIFY] = user_has_device(user)
    request.session[SESSION_SETUP] = must_set_up(user)


def clear_requirement(request) -> None:
    request.session[SESSION_VERIFY] = False
    request.session[SESSION_SETUP] = False


def secret_base32(device) -> str:
    """The device secret in base32, grouped by four for typing into an authenticator app."""
    raw = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def qr_code_data_uri(device) -> str:
    """The otpauth:// URL of ``device`` as a QR code: an SVG drawn on the server, as a data: URI.

    The page shows it with <img src="data:...">, which the Content-Security-Policy allows
    (img-src data:), so no markup is injected into the page.
    """
    image = qrcode.make(device.config_url, image_factory=SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="utf-8")
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def looks_like_totp(token: str) -> bool:
    return token.isdigit() and len(token) == 6


def verify_code(user, token: str):
    """Check a TOTP code (6 digits) or a backup code against the user's confirmed devices.

    Returns ``(device, throttled)``: the device that accepted the code (None if none did), and
    whether a device refused to check because of too many recent failures.
    """
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    token = "".join(token.split()).lower()
    model = TOTPDevice if looks_like_totp(token) else StaticDevice
    throttled = False
    for device in model.objects.filter(user=user, confirmed=True).order_by("pk"):
        allowed, _info = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        if device.verify_token(token):
            return device, False
    return None, throttled
