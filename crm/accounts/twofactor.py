"""Two-factor authentication with TOTP (django-otp).

At login we note in the session whether this user must pass a second factor (they have a
confirmed TOTP device) or must first set one up (they are an Administrator and
REQUIRE_2FA_FOR_ADMINS is on). TwoFactorMiddleware then keeps them on the verify or setup page
until done, so the check costs no query on ordinary requests.
"""

from django.conf import settings
from django_otp import user_has_device

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
