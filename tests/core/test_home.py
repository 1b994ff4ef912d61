"""The home page (R5.6.1, R5.6.3): greeting, roles, navigation tiles, widgets, query budget."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from crm.accounts import roles
from crm.core.registry import HomeWidget, NavItem, registry
from crm.core.views import greeting_for

HOME = "/"


@pytest.fixture
def temp_registry():
    """Add NavItems / HomeWidgets for one test and remove them afterwards."""
    added_nav, added_widgets = [], []

    class _Temp:
        def nav(self, item):
            registry.add_nav(item)
            added_nav.append(item.key)

        def widget(self, widget):
            registry.add_home_widget(widget)
            added_widgets.append(widget.key)

    yield _Temp()
    for key in added_nav:
        registry.nav_items.pop(key, None)
    for key in added_widgets:
        registry.home_widgets.pop(key, None)


@pytest.mark.parametrize("role", roles.ROLES)
def test_home_renders_for_every_role(role, make_user, client_for):
    """R5.6.1: every role gets the home page with a greeting by display name and its role label."""
    user = make_user(role, display_name="王小明")
    response = client_for(user).get(HOME)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r"(早上好|下午好|晚上好)，王小明", html)  # zh-hans is the default language
    assert str(roles.role_label(role)) in html
    assert 'id="crm-sidebar"' in html


def test_home_anonymous_redirected_to_login(client, db):
    """R7.1.1: the home page needs a signed-in user."""
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_home_query_budget(rep, client_for, django_assert_num_queries):
    """R6.2.4: the home page costs exactly 5 queries: session, user, user and group permissions, roles."""
    client = client_for(rep)
    client.get(HOME)  # warm per-process caches (e.g. the unread-notification count)
    with django_assert_num_queries(5) as captured:
        response = client.get(HOME)
    assert response.status_code == 200
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "django_session" in sql  # the budget is measured on a real signed-in request


def test_home_query_count_does_not_grow_with_nav_items(
    rep, client_for, temp_registry, django_assert_num_queries
):
    """R6.2.4: more navigation entries (with permissions) cost no extra queries."""
    client = client_for(rep)
    client.get(HOME)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        tiles_before = client.get(HOME).content.decode().count('class="crm-tile"')
    for i in range(5):
        temp_registry.nav(
            NavItem(key=f"t{i}", label=f"T{i}", url_name="core:home", permission="accounts.view_user")
        )
    with django_assert_num_queries(len(before.captured_queries)):
        response = client.get(HOME)
    assert response.content.decode().count('class="crm-tile"') == tiles_before + 5


def test_greeting_by_local_time():
    """R5.6.1: the greeting follows the hour in the active (user's) time zone."""
    utc_0300 = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, 22:00 in New York
    with translation.override("en"):
        with timezone.override("Asia/Shanghai"):
            assert greeting_for(name="Li", now=utc_0300) == "Good morning, Li"
            assert greeting_for(name="Li", now=datetime(2025, 1, 1, 6, 0, tzinfo=UTC)) == "Good afternoon, Li"
            assert greeting_for(name="Li", now=datetime(2025, 1, 1, 12, 0, tzinfo=UTC)) == "Good evening, Li"
            assert greeting_for(name="Li", now=datetime(2025, 1, 1, 19, 0, tzinfo=UTC)) == "Good evening, Li"
        with timezone.override("America/New_York"):
            assert greeting_for(name="Li", now=utc_0300) == "Good evening, Li"


def test_home_shows_nav_tiles_for_permitted_entries_only(make_user, client_for, temp_registry):
    """R5.6.3: navigation entries appear as tiles, only those the user may open."""
    temp_registry.nav(NavItem(key="t-open", label="Open tile", url_name="core:home", icon="star", order=5))
    temp_registry.nav(
        NavItem(key="t-secret", label="Secret tile", url_name="core:home", permission="accounts.add_team")
    )
    temp_registry.nav(NavItem(key="t-broken", label="Broken tile", url_name="nowhere:missing"))
    html = client_for(make_user(roles.SALES_REP)).get(HOME).content.decode()
    assert "Open tile" in html
    assert "bi-star" in html
    assert "Secret tile" not in html
    assert "Broken tile" not in html  # an unresolvable URL name is skipped, not a crash
    admin_html = client_for(make_user(roles.ADMINISTRATOR)).get(HOME).content.decode()
    assert "Secret tile" in admin_html


def test_home_empty_state_without_widgets(rep, client_for):
    """R5.6.3: with no widget registered the page explains what will appear."""
    html = client_for(rep).get(HOME).content.decode()
    assert "您的任务、线索和工单将显示在这里。" in html


def test_home_renders_registered_widgets(rep, client_for, temp_registry):
    """R5.6.3: a widget's template is rendered with its own context, for whom it is visible."""
    temp_registry.widget(
        HomeWidget(
            key="w-test",
            template="partials/_empty_state.html",
            get_context=lambda request: {"message": f"Widget for {request.user.username}", "icon": "star"},
        )
    )
    temp_registry.widget(
        HomeWidget(
            key="w-hidden",
            template="partials/_empty_state.html",
            get_context=lambda request: {"message": "hidden widget"},
            visible=lambda user: False,
        )
    )
    html = client_for(rep).get(HOME).content.decode()
    assert "Widget for rep1" in html
    assert "bi-star" in html
    assert "hidden widget" not in html
    assert "您的任务、线索和工单将显示在这里。" not in html


def test_failing_widget_does_not_break_home(rep, client_for, temp_registry, settings):
    """R6.2.2: one broken widget shows a notice; the rest of the home page still works."""
    settings.DEBUG = False

    def boom(request):
        raise RuntimeError("widget failure")

    temp_registry.widget(HomeWidget(key="w-boom", template="core/home.html", get_context=boom))
    response = client_for(rep).get(HOME)
    assert response.status_code == 200
    assert "此部分内容无法加载，请稍后重试。" in response.content.decode()


def test_home_in_english_for_english_user(make_user, client_for):
    """R5.6.1: a user who chose English gets the page in English."""
    user = make_user(roles.SALES_REP, language="en", display_name="Ann")
    html = client_for(user).get(HOME).content.decode()
    assert '<html lang="en"' in html
    assert re.search(r"Good (morning|afternoon|evening), Ann", html)
