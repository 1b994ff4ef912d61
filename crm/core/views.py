"""Views of the UI shell: the home page, the language switch and the error pages."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import BadRequest
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST
from django.views.defaults import bad_request as _bad_request
from django.views.defaults import page_not_found as _page_not_found
from django.views.defaults import permission_denied as _permission_denied
from django.views.defaults import server_error as _server_error

from .registry import registry


def greeting_for(*, name: str, now: datetime | None = None) -> str:
    """ "Good morning/afternoon/evening, {name}" by the hour of ``now`` in the active time zone."""
    hour = timezone.localtime(now).hour
    if 5 <= hour < 12:
        return gettext("Good morning, %(name)s") % {"name": name}
    if 12 <= hour < 18:
        return gettext("Good afternoon, %(name)s") % {"name": name}
    return gettext("Good evening, %(name)s") % {"name": name}


def home(request):
    """R5.6.1/R5.6.3: greeting, the user's roles, navigation tiles and the apps' widgets."""
    context = {
        "greeting": greeting_for(name=request.user.get_display_name()),
        "widgets": registry.widgets_for(request),
    }
    return render(request, "core/home.html", context)


def _safe_next(request) -> str:
    """The POSTed/GET `next`, else the referer, when they point at this site; else "/"."""
    allowed = {request.get_host()}
    for candidate in (
        request.POST.get("next"),
        request.GET.get("next"),
        request.META.get("HTTP_REFERER"),
    ):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts=allowed, require_https=request.is_secure()
        ):
            return candidate
    return "/"


@login_not_required
@require_POST
def set_language(request):
    """R5.6.1: switch the interface language (remembered on the user and in a cookie).

    An unknown language answers 400; `next` is followed only when it stays on this site.
    """
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        raise BadRequest("Unknown language")
    user = request.user
    if user.is_authenticated and user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    response = redirect(_safe_next(request))
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


@login_not_required
def favicon(request):
    """/favicon.ico for browsers that ask for it before reading the page's <link rel="icon">."""
    return redirect(static("img/favicon.svg"), permanent=True)


def bad_request(request, exception):
    return _bad_request(request, exception, template_name="errors/400.html")


def permission_denied(request, exception):
    return _permission_denied(request, exception, template_name="errors/403.html")


def page_not_found(request, exception):
    return _page_not_found(request, exception, template_name="errors/404.html")


def server_error(request):
    return _server_error(request, template_name="errors/500.html")
