"""The responsive UI shell (R5.6.1, R5.6.2, R5.6.3): layout, language switch, error pages,
static assets, CSP-clean markup, shared partials and the Django admin branding."""

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import constants as message_levels
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.forms import Form, ValidationError
from django.forms import fields as form_fields
from django.template import Context, loader
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from crm.accounts import roles
from crm.core import views
from crm.core.registry import registry
from crm.core.templatetags.crm_tags import alert_class, resolve_nav
from tests.factories import UserFactory

SET_LANGUAGE = "/language/"
TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"


class _InlineCodeFinder(HTMLParser):
    """Collects what a strict Content-Security-Policy would block."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src") and attrs.get("type") not in ("application/json",):
            self.problems.append(f"inline <script> at {self.getpos()}")
        if tag == "style":
            self.problems.append(f"<style> at {self.getpos()}")
        if "style" in attrs:
            self.problems.append(f"style= on <{tag}> at {self.getpos()}")
        for name in attrs:
            if name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}> at {self.getpos()}")
        if tag == "a" and (attrs.get("href") or "").lower().startswith("javascript:"):
            self.problems.append(f"javascript: URL at {self.getpos()}")


def csp_problems(html: str) -> list[str]:
    finder = _InlineCodeFinder()
    finder.feed(html)
    return finder.problems


# ---- Layout -----------------------------------------------------------------------------------


def test_shell_has_navigation_offcanvas_and_accessibility_landmarks(rep, client_for):
    """R5.6.2/R5.6.3: sidebar that collapses into an offcanvas menu, skip link, labelled landmarks."""
    html = client_for(rep).get("/").content.decode()
    assert 'class="crm-skip-link' in html
    assert 'href="#main-content"' in html
    assert 'id="main-content"' in html
    assert "offcanvas-lg" in html  # sidebar >= 992px, offcanvas below
    assert 'data-bs-target="#crm-sidebar"' in html  # the hamburger button
    with translation.override("zh-hans"):
        assert f'aria-label="{translation.gettext("Breadcrumb")}"' in html
    assert 'aria-current="page"' in html  # the current nav entry is marked
    assert 'name="viewport"' in html


def test_shell_user_menu(make_user, client_for):
    """R5.6.3: the user menu shows the display name, role and account links; sign-out is a POST."""
    user = make_user(roles.SALES_MANAGER, display_name="陈经理")
    html = client_for(user).get("/").content.decode()
    assert "陈经理" in html
    assert str(roles.role_label(roles.SALES_MANAGER)) in html
    assert f'<form method="post" action="{reverse("accounts:logout")}">' in html
    for name in ("accounts:profile", "accounts:password-change", "accounts:two-factor-setup"):
        assert f'href="{reverse(name)}"' in html


def test_admin_section_and_django_admin_link_only_for_staff(rep, admin_user, client_for):
    """R5.6.3: the administration section is shown only to staff."""
    admin_url = reverse("admin:index")
    assert f'href="{admin_url}"' not in client_for(rep).get("/").content.decode()
    assert f'href="{admin_url}"' in client_for(admin_user).get("/").content.decode()


def test_home_nav_item_registered():
    """R5.6.1: the platform registers the Home entry first in the navigation."""
    item = registry.nav_items["home"]
    assert item.url_name == "core:home"
    assert item.icon == "house"
    assert item.order == 0


def test_resolve_nav_marks_longest_prefix_active():
    """R5.6.3: only the most specific navigation entry is highlighted."""
    from crm.core.registry import NavItem

    items = [
        NavItem(key="home", label="Home", url_name="core:home"),
        NavItem(key="lang", label="Lang", url_name="core:set-language"),
        NavItem(key="bad", label="Bad", url_name="does-not:exist"),
    ]
    links = resolve_nav(items, "/language/")
    assert [(link.key, link.active) for link in links] == [("home", False), ("lang", True)]
    assert [link.active for link in resolve_nav(items, "/")] == [True, False]
    assert not any(link.active for link in resolve_nav(items, "/elsewhere/"))


def test_anonymous_error_page_uses_public_shell(client, db):
    """R5.6.1: pages for signed-out visitors have no navigation, but a language switcher."""
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'id="crm-sidebar"' not in html
    assert "crm-shell--public" in html
    assert f'action="{SET_LANGUAGE}"' in html


# ---- Language switch ---------------------------------------------------------------------------


def test_switch_language_to_english_and_back(rep, client_for):
    """R5.6.1: the language choice is stored on the user and applied to the next page."""
    client = client_for(rep)
    assert '<html lang="zh-hans"' in client.get("/").content.decode()

    response = client.post(SET_LANGUAGE, {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    rep.refresh_from_db()
    assert rep.language == "en"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert '<html lang="en"' in client.get("/").content.decode()

    client.post(SET_LANGUAGE, {"language": "zh-hans", "next": "/"})
    rep.refresh_from_db()
    assert rep.language == "zh-hans"
    assert '<html lang="zh-hans"' in client.get("/").content.decode()


def test_switch_language_anonymous_sets_cookie(client, db):
    """R5.6.1: the login page can switch language before signing in (cookie only)."""
    response = client.post(SET_LANGUAGE, {"language": "en", "next": reverse("accounts:login")})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert '<html lang="en"' in client.get(reverse("accounts:login")).content.decode()


def test_switch_language_rejects_unknown_language(rep, client_for):
    """R5.6.1 (negative): an unknown language answers 400 and changes nothing."""
    client = client_for(rep)
    response = client.post(SET_LANGUAGE, {"language": "xx", "next": "/"})
    assert response.status_code == 400
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    rep.refresh_from_db()
    assert rep.language == "zh-hans"


def test_switch_language_requires_post(rep, client_for):
    """R7.1.x (negative): a GET cannot change state."""
    response = client_for(rep).get(SET_LANGUAGE, {"language": "en"})
    assert response.status_code == 405
    rep.refresh_from_db()
    assert rep.language == "zh-hans"


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "https://evil.example", "javascript:alert(1)"],
)
def test_switch_language_refuses_open_redirect(next_url, rep, client_for):
    """R7.1.x (negative): `next` pointing off-site is ignored (falls back to "/")."""
    response = client_for(rep).post(SET_LANGUAGE, {"language": "en", "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_switch_language_falls_back_to_same_site_referer(rep, client_for):
    """R5.6.3: without `next`, the user returns to the page they came from (same site only)."""
    client = client_for(rep)
    response = client.post(SET_LANGUAGE, {"language": "en"}, HTTP_REFERER="http://testserver/jobs/")
    assert response["Location"] == "http://testserver/jobs/"
    response = client.post(SET_LANGUAGE, {"language": "en"}, HTTP_REFERER="https://evil.example/")
    assert response["Location"] == "/"


def test_switch_language_enforces_csrf(rep, db):
    """R7.1.x (negative): the language form is CSRF-protected like every POST."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(rep)
    response = client.post(SET_LANGUAGE, {"language": "en"})
    assert response.status_code == 403
    rep.refresh_from_db()
    assert rep.language == "zh-hans"


# ---- Error pages -------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "expected"), [("zh-hans", "zh-hans"), ("en", "en")])
def test_404_page_in_user_language(language, expected, make_user, client_for, settings):
    """R5.6.1: the 404 page follows the user's language, keeps the shell and links home."""
    settings.DEBUG = False
    user = make_user(roles.SALES_REP, language=language)
    response = client_for(user).get("/certainly/missing/")
    html = response.content.decode()
    assert response.status_code == 404
    assert f'<html lang="{expected}"' in html
    assert 'class="crm-error-code">404<' in html
    assert 'href="/"' in html
    with translation.override(language):
        assert translation.gettext("Page not found") in html


def test_404_page_anonymous_english_by_cookie(client, db, settings):
    """R5.6.1: an anonymous visitor's language cookie picks the 404 page language."""
    settings.DEBUG = False
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get("/certainly/missing/")
    assert response.status_code == 404
    assert '<html lang="en"' in response.content.decode()
    assert "Page not found" in response.content.decode()


def test_400_and_403_pages_render(rep):
    """R5.6.3: the 400 and 403 handlers render their templates with the right status."""
    request = RequestFactory().get("/x/")
    request.user = rep
    response = views.bad_request(request, Exception("bad"))
    assert response.status_code == 400
    assert 'class="crm-error-code">400<' in response.content.decode()
    response = views.permission_denied(request, PermissionDenied("secret internal reason"))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="crm-error-code">403<' in html
    assert "secret internal reason" not in html  # exception text is not shown to users


def test_403_page_through_a_view(rep, client_for):
    """R5.6.3: the URLconf's 403 handler is ours and renders the 403 page in the shell."""
    from django.urls import get_resolver

    handler = get_resolver().resolve_error_handler(403)
    request = RequestFactory().get("/")
    request.user = rep
    response = handler(request, PermissionDenied())
    assert response.status_code == 403
    assert 'id="crm-sidebar"' in response.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_500_template_renders_with_empty_context(language):
    """R5.6.1: 500.html renders with no context processors at all, in the active language."""
    with translation.override(language):
        html = loader.get_template("errors/500.html").render()
        assert f'<html lang="{language}"' in html
        assert translation.gettext("Something went wrong") in html
    assert 'href="/"' in html
    assert csp_problems(html) == []
    html = loader.get_template("errors/500.html").template.render(Context())
    assert "500" in html


def test_500_handler_view(rf):
    """R5.6.3: the 500 handler answers 500 with the friendly page."""
    response = views.server_error(rf.get("/"))
    assert response.status_code == 500
    assert 'class="crm-error-code">500<' in response.content.decode()


# ---- Static assets and CSP ----------------------------------------------------------------------


STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")


@pytest.mark.parametrize("template", ["base.html", "errors/500.html", "admin/base_site.html"])
def test_static_files_referenced_exist(template):
    """R5.6.2: every asset the layout references is served locally (no CDN)."""
    source = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    paths = STATIC_TAG.findall(source)
    assert paths, "expected {% static %} references"
    for path in paths:
        assert finders.find(path), f"missing static file {path}"
    assert "https://" not in source
    assert "//cdn" not in source


def test_vendor_assets_and_licences_present():
    """R5.6.2: Bootstrap, Bootstrap Icons (font) and their licences are committed."""
    for path in (
        "vendor/bootstrap/LICENSE",
        "vendor/bootstrap-icons/LICENSE",
        "vendor/bootstrap-icons/fonts/bootstrap-icons.woff2",
        "vendor/bootstrap-icons/fonts/bootstrap-icons.woff",
        "vendor/bootstrap/css/bootstrap.min.css.map",
        "vendor/bootstrap/js/bootstrap.bundle.min.js.map",
        "django_htmx/htmx-2.min.js",
    ):
        assert finders.find(path), path
    css = Path(finders.find("css/crm.css")).read_text(encoding="utf-8")
    assert ".htmx-indicator" in css  # htmx's injected indicator styles are turned off
    assert ".table-cards" in css


def test_rendered_pages_have_no_inline_code(rep, client, client_for, db, settings):
    """R7.x CSP: no inline <script>, <style>, style= or on*= handlers in the shell's pages."""
    html = client_for(rep).get("/").content.decode()
    assert csp_problems(html) == []
    assert '"includeIndicatorStyles": false' in html
    srcs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert srcs
    assert all(s.startswith(settings.STATIC_URL) for s in srcs)
    client.logout()
    settings.DEBUG = False
    assert csp_problems(client.get("/missing/").content.decode()) == []


def test_csp_header_present(rep, client_for):
    """R7.x CSP: pages are served with a script-src 'self' policy."""
    response = client_for(rep).get("/")
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


# ---- Partials ----------------------------------------------------------------------------------


def test_pagination_keeps_other_query_parameters(rf):
    """R5.6.3: page links keep filters and sort order."""
    request = rf.get("/customers/", {"q": "张", "sort": "-created", "page": "2"})
    page = Paginator(list(range(100)), 10).page(2)
    html = loader.render_to_string("partials/_pagination.html", {"page_obj": page}, request=request)
    assert "q=%E5%BC%A0" in html
    assert "sort=-created" in html
    assert "page=3" in html
    assert "page=1" in html
    assert "page=10" in html
    assert 'aria-current="page"' in html


def test_pagination_renders_nothing_for_one_page(rf):
    page = Paginator([1, 2], 10).page(1)
    html = loader.render_to_string("partials/_pagination.html", {"page_obj": page}, request=rf.get("/"))
    assert html.strip() == ""


class _DemoForm(Form):
    name = form_fields.CharField(label="Name")
    token = form_fields.CharField(widget=form_fields.HiddenInput)

    def clean(self):
        raise ValidationError("The whole form is wrong.")


def test_form_partial_shows_non_field_and_field_errors(rf):
    """R5.6.3: the form partial shows errors that belong to no field, and field errors."""
    form = _DemoForm(data={"name": "", "token": ""})
    form.is_valid()
    html = loader.render_to_string(
        "partials/_form.html", {"form": form, "cancel_url": "/back/"}, request=rf.get("/")
    )
    assert "The whole form is wrong." in html
    assert 'class="alert alert-danger"' in html
    assert 'name="name"' in html
    assert "is-invalid" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'href="/back/"' in html
    inner = loader.render_to_string("partials/_form.html", {"form": form, "form_tag": False})
    assert "<form" not in inner
    assert 'name="name"' in inner


def test_empty_state_partial():
    html = loader.render_to_string(
        "partials/_empty_state.html",
        {"message": "No customers yet.", "icon": "people", "action_url": "/new/", "action_label": "New"},
    )
    assert "No customers yet." in html
    assert "bi-people" in html
    assert 'href="/new/"' in html
    bare = loader.render_to_string("partials/_empty_state.html", {"message": "Nothing"})
    assert "bi-inbox" in bare
    assert "<a " not in bare


def test_messages_are_dismissible_alerts(rep, client_for):
    """R5.6.3: flash messages show as dismissible alerts; success ones fade out."""
    from django.contrib import messages

    request = RequestFactory().get("/")
    request.user = rep
    request.session = {}
    from django.contrib.messages.storage.fallback import FallbackStorage

    request._messages = FallbackStorage(request)
    messages.success(request, "Saved.")
    messages.error(request, "Broken.")
    html = loader.render_to_string("partials/_messages.html", request=request)
    assert "alert-success" in html
    assert "data-crm-autodismiss" in html
    assert "alert-danger" in html
    assert 'data-bs-dismiss="alert"' in html
    assert alert_class("error") == "danger"
    assert alert_class("success extra") == "success"
    assert alert_class("") == "info"
    assert message_levels.DEFAULT_TAGS[message_levels.ERROR] == "error"


# ---- Django admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_admin_branding_and_language_switcher(language, make_user, client_for):
    """R5.6.1: the Django admin carries the CRM's name and a language switcher, in both languages."""
    user = make_user(roles.ADMINISTRATOR, language=language)
    response = client_for(user).get(reverse("admin:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{language}"' in html
    with translation.override(language):
        assert translation.gettext("E-commerce CRM administration") in html
    assert 'class="crm-admin-lang"' in html
    assert f'action="{SET_LANGUAGE}"' in html
    assert 'value="en"' in html
    assert 'value="zh-hans"' in html


# ---- Browser: layout at phone, tablet and desktop widths ----------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium not installed")
@pytest.mark.django_db(transaction=True)
def test_no_horizontal_overflow_and_menu_works(live_server, browser):
    """R5.6.2: at 390, 820 and 1440 px nothing overflows; below 992px the menu is an offcanvas."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.test import Client

    user = UserFactory(username="shell-admin", display_name="测试管理员", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    for width, phone_menu in ((390, True), (820, True), (1440, False)):
        context = browser.new_context(viewport={"width": width, "height": 844})
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": live_server.url}]
        )
        page = context.new_page()
        violations = []
        page.on("console", lambda msg, v=violations: v.append(msg.text) if msg.type == "error" else None)
        for path in ("/", "/no-such-page/"):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} overflows by {overflow}px at {width}px"
        page.goto(live_server.url + "/")
        page.wait_for_load_state("networkidle")
        sidebar = page.locator("#crm-sidebar")
        toggle = page.locator('[data-bs-toggle="offcanvas"][data-bs-target="#crm-sidebar"]')
        if phone_menu:
            assert not sidebar.is_visible()
            toggle.click()
            page.wait_for_selector("#crm-sidebar.show")
            assert page.locator("#crm-sidebar .nav-link.active").is_visible()
        else:
            assert not toggle.is_visible()
            assert sidebar.is_visible()
        # Bootstrap Icons font loaded, htmx loaded, and no CSP violations reported.
        assert page.evaluate("document.fonts.check('16px bootstrap-icons')")
        assert page.evaluate("typeof window.htmx === 'object' && typeof window.bootstrap === 'object'")
        assert not [v for v in violations if "Content Security Policy" in v], violations
        context.close()


def test_favicon_redirects_to_static_svg(client, db):
    """R5.6.3: /favicon.ico works for anonymous visitors and points at the local SVG."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == settings.STATIC_URL + "img/favicon.svg"
    assert finders.find("img/favicon.svg")
