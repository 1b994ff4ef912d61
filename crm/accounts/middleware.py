from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from . import twofactor

EXEMPT_URL_NAMES = {
    "accounts:logout",
    "accounts:two-factor-verify",
    "accounts:two-factor-setup",
    "set_language",
    "core:set-language",
    "javascript-catalog",
    "healthz",
}


class TwoFactorMiddleware:
    """Keep a signed-in user who still owes a second factor on the verify (or setup) page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        session = request.session
        needs_verify = session.get(twofactor.SESSION_VERIFY) and not user.is_verified()
        needs_setup = session.get(twofactor.SESSION_SETUP)
        if not (needs_verify or needs_setup):
            return None
        match = request.resolver_match
        name = (
            f"{match.namespace}:{match.url_name}"
            if match and match.namespace
            else getattr(match, "url_name", "")
        )
        if name in EXEMPT_URL_NAMES or request.path.startswith("/static/"):
            return None
        target = "accounts:two-factor-verify" if needs_verify else "accounts:two-factor-setup"
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
