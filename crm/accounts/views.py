"""Sign-in, sign-out, passwords, profile and two-factor authentication (R5.6.1, R7.1.3)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from . import selectors, services, twofactor
from .forms import DisableTwoFactorForm, LoginForm, PasswordResetForm, ProfileForm, TokenForm

VERIFY_FAILURES_SESSION_KEY = "2fa_verify_failures"
NEW_BACKUP_CODES_SESSION_KEY = "2fa_new_backup_codes"
VERIFY_FAILURE_LIMIT = 5


def safe_next(request, default: str | None = None) -> str:
    """The ``next`` parameter if it points into this site, else ``default`` (the home page)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def _set_language_cookie(response, language: str) -> None:
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )


# Sign in and out --------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Password sign-in. The session ends when the browser closes unless "remember me" is ticked,
    in which case it lasts SESSION_COOKIE_AGE (8 hours by default)."""

    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(axes_failure_limit=settings.AXES_FAILURE_LIMIT, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        session = self.request.session
        if form.cleaned_data.get("remember_me"):
            session.set_expiry(settings.SESSION_COOKIE_AGE)
        else:
            session.set_expiry(0)
        # Owe a second factor? Go straight to that page, keeping the validated destination.
        if session.get(twofactor.SESSION_VERIFY):
            response = redirect(self._two_factor_url("accounts:two-factor-verify"))
        elif session.get(twofactor.SESSION_SETUP):
            response = redirect(self._two_factor_url("accounts:two-factor-setup"))
        _set_language_cookie(response, form.get_user().language)
        return response

    def _two_factor_url(self, name: str) -> str:
        return f"{reverse(name)}?{urlencode({'next': self.get_success_url()})}"


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): signs out and returns to the sign-in page with a message."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You have been signed out."))
        return response


# Passwords ---------------------------------------------------------------------------------------


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password-change-done")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.user_password_changed(user=form.user, actor=self.request.user)
        messages.success(self.request, _("Your password has been changed."))
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "accounts/password_reset.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.user_password_changed(user=form.user, actor=form.user, reset=True)
        # Whoever proved they own the mailbox may try to sign in again at once.
        from axes.utils import reset as axes_reset

        axes_reset(username=form.user.get_username())
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# Profile -------------------------------------------------------------------------------------------


def profile(request):
    user = selectors.user_get_profile(user=request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                services.user_update_profile(user=user, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                # Show the confirmation in the language just chosen.
                from django.utils import translation

                with translation.override(user.language):
                    messages.success(request, _("Your profile has been saved."))
                response = redirect("accounts:profile")
                _set_language_cookie(response, user.language)
                return response
    else:
        form = ProfileForm(initial=ProfileForm.initial_for(user))
    context = {
        "form": form,
        "profile_user": user,
        "roles": selectors.user_role_labels(user=user),
        "two_factor": selectors.two_factor_status(user=user),
    }
    return render(request, "accounts/profile.html", context)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# Two-factor authentication ----------------------------------------------------------------------


@method_decorator([never_cache, sensitive_post_parameters()], name="dispatch")
class TwoFactorSetupView(View):
    """Turn on an authenticator app (QR code + secret, confirm with a code); manage it once on."""

    template_name = "accounts/two_factor_setup.html"

    def dispatch(self, request, *args, **kwargs):
        # A user with a device who has not passed it yet must not manage it.
        if request.session.get(twofactor.SESSION_VERIFY) and not request.user.is_verified():
            return redirect(f"{reverse('accounts:two-factor-verify')}?{urlencode({'next': request.path})}")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(request)

    def post(self, request):
        action = request.POST.get("action", "confirm")
        confirmed = services.totp_device_confirmed(user=request.user)
        if confirmed is None and action == "confirm":
            return self.confirm(request)
        if confirmed is not None and action == "regenerate":
            codes = services.backup_codes_regenerate(user=request.user, actor=request.user)
            request.session[NEW_BACKUP_CODES_SESSION_KEY] = codes
            messages.success(request, _("New backup codes were created. The old ones no longer work."))
            return redirect("accounts:two-factor-setup")
        if confirmed is not None and action == "disable":
            return self.disable(request)
        return redirect("accounts:two-factor-setup")

    def confirm(self, request):
        device = services.totp_device_for_setup(user=request.user)
        form = TokenForm(request.POST)
        if form.is_valid():
            if device.verify_token(form.cleaned_data["token"]):
                codes = services.two_factor_enable(user=request.user, device=device, actor=request.user)
                otp_login(request, device)
                twofactor.clear_requirement(request)
                request.session[NEW_BACKUP_CODES_SESSION_KEY] = codes
                messages.success(request, _("Two-factor authentication is now on."))
                next_url = safe_next(request, default="")
                if next_url:
                    request.session["2fa_setup_next"] = next_url
                return redirect("accounts:two-factor-setup")
            form.add_error(
                "token", _("This code is wrong or has expired. Check your phone's clock and try again.")
            )
        return self.render(request, setup_form=form, status=200)

    def disable(self, request):
        form = DisableTwoFactorForm(request.POST, user=request.user)
        if not services.two_factor_can_disable(request.user):
            messages.error(request, _("Administrators must keep two-factor authentication switched on."))
            return redirect("accounts:two-factor-setup")
        if form.is_valid():
            device, throttled = twofactor.verify_code(request.user, form.cleaned_data["token"])
            if device is not None:
                services.two_factor_disable(user=request.user, actor=request.user)
                twofactor.clear_requirement(request)
                messages.success(request, _("Two-factor authentication has been switched off."))
                return redirect("accounts:profile")
            form.add_error("token", _throttled_or_wrong(throttled))
        return self.render(request, disable_form=form)

    def render(self, request, *, setup_form=None, disable_form=None, status=200):
        user = request.user
        confirmed = services.totp_device_confirmed(user=user)
        context = {
            "enabled": confirmed is not None,
            "required": bool(request.session.get(twofactor.SESSION_SETUP)),
            "new_backup_codes": request.session.pop(NEW_BACKUP_CODES_SESSION_KEY, None),
            "continue_url": request.session.pop("2fa_setup_next", None),
            "next": safe_next(request, default=""),
        }
        if confirmed is None:
            device = services.totp_device_for_setup(user=user)
            context.update(
                {
                    "qr_code": twofactor.qr_code_data_uri(device),
                    "secret": twofactor.secret_base32(device),
                    "form": setup_form or TokenForm(),
                }
            )
        else:
            context.update(
                {
                    "status": selectors.two_factor_status(user=user),
                    "can_disable": services.two_factor_can_disable(user),
                    "disable_form": disable_form or DisableTwoFactorForm(user=user),
                }
            )
        return render(request, self.template_name, context, status=status)


def _throttled_or_wrong(throttled: bool) -> str:
    if throttled:
        return _("Too many wrong codes. Wait a minute, then try again.")
    return _("This code is wrong or has expired.")


@never_cache
@sensitive_post_parameters("token")
def two_factor_verify(request):
    """Second step of sign-in: a code from the app or a backup code (each backup code works once)."""
    user = request.user
    next_url = safe_next(request)
    if not request.session.get(twofactor.SESSION_VERIFY) or user.is_verified():
        return redirect(next_url)
    form = TokenForm(request.POST or None, allow_backup=True)
    if request.method == "POST" and form.is_valid():
        device, throttled = twofactor.verify_code(user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            twofactor.clear_requirement(request)
            request.session.pop(VERIFY_FAILURES_SESSION_KEY, None)
            if not twofactor.looks_like_totp(form.cleaned_data["token"]):
                left = selectors.two_factor_status(user=user).backup_codes_left
                messages.warning(
                    request,
                    _("You signed in with a backup code. Backup codes left: %(count)d.") % {"count": left},
                )
            return redirect(next_url)
        failures = request.session.get(VERIFY_FAILURES_SESSION_KEY, 0) + 1
        request.session[VERIFY_FAILURES_SESSION_KEY] = failures
        if failures >= VERIFY_FAILURE_LIMIT:
            auth_logout(request)
            messages.error(
                request, _("Too many wrong codes. You have been signed out; please sign in again.")
            )
            return redirect(settings.LOGIN_URL)
        form.add_error("token", _throttled_or_wrong(throttled))
    context = {
        "form": form,
        "next": next_url,
        "attempts_left": VERIFY_FAILURE_LIMIT - request.session.get(VERIFY_FAILURES_SESSION_KEY, 0),
    }
    return render(request, "accounts/two_factor_verify.html", context)
