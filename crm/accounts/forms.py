from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from crm.core.validators import validate_email, validate_mobile

from .models import User, time_zone_choices

# Shown first in the time-zone list: where our users and their customers mostly are.
COMMON_TIME_ZONES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Macau",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Kuala_Lumpur",
    "Asia/Bangkok",
    "Asia/Dubai",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Australia/Sydney",
    "UTC",
)


def grouped_time_zone_choices():
    common = [(name, name) for name in COMMON_TIME_ZONES]
    rest = [choice for choice in time_zone_choices() if choice[0] not in COMMON_TIME_ZONES]
    return [(_("Common time zones"), common), (_("All time zones"), rest)]


class LoginForm(auth_forms.AuthenticationForm):
    """User name (any letter case) and password, plus "remember me"."""

    remember_me = forms.BooleanField(
        label=_("Keep me signed in on this computer"),
        required=False,
        help_text=_("Leave unticked on a shared computer: you are signed out when the browser closes."),
    )

    error_messages = {
        "invalid_login": _("The user name or password is incorrect. Please try again."),
        "inactive": _("The user name or password is incorrect. Please try again."),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = _("User name")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def clean_username(self):
        # Match the user name without regard to letter case: use the stored spelling when exactly
        # one account matches, so authentication and the lockout counter see one name.
        username = (self.cleaned_data.get("username") or "").strip()
        if username:
            matches = list(
                User.objects.filter(username__iexact=username).values_list("username", flat=True)[:2]
            )
            if len(matches) == 1:
                return matches[0]
        return username


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Sends the reset e-mail in the language the user chose."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        user = context.get("user")
        language = getattr(user, "language", "") or settings.LANGUAGE_CODE
        with translation.override(language):
            super().send_mail(
                subject_template_name,
                email_template_name,
                context,
                from_email,
                to_email,
                html_email_template_name,
            )


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=100, required=False)
    email = forms.CharField(
        label=_("E-mail"),
        max_length=254,
        required=False,
        validators=[validate_email],
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    mobile = forms.CharField(
        label=_("Mobile phone"),
        max_length=32,
        required=False,
        validators=[validate_mobile],
        help_text=_("Mainland China: 11 digits. Elsewhere: + and the country code, e.g. +85291234567."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=grouped_time_zone_choices)

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"]
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError(
                _("Choose a time zone from the list."), code="invalid_time_zone"
            ) from exc
        return value

    @classmethod
    def initial_for(cls, user: User) -> dict:
        return {name: getattr(user, name) for name in cls.base_fields}


class TokenForm(forms.Form):
    """A 6-digit code from the authenticator app (or, when allowed, a backup code)."""

    token = forms.CharField(
        label=_("Verification code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "class": "text-center fs-4 font-monospace",
            }
        ),
    )

    def __init__(self, *args, allow_backup: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_backup = allow_backup
        if allow_backup:
            self.fields["token"].help_text = _(
                "Enter the 6-digit code from your app, or one of your backup codes."
            )
            self.fields["token"].widget.attrs["inputmode"] = "text"

    def clean_token(self):
        token = "".join(self.cleaned_data["token"].split()).lower()
        if token.isdigit() and len(token) == 6:
            return token
        if self.allow_backup and len(token) == 8 and token.isalnum():
            return token
        if self.allow_backup:
            raise forms.ValidationError(
                _("Enter the 6-digit code from your app or an 8-character backup code."), code="format"
            )
        raise forms.ValidationError(_("Enter the 6-digit code shown in your app."), code="format")


class DisableTwoFactorForm(TokenForm):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    field_order = ["password", "token"]

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["token"].widget.attrs.pop("autofocus", None)

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("Your password is incorrect."), code="password_incorrect")
        return password
