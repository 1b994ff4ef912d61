"""Notifications: notify, emails in the recipient's language, unread count, pages (R5.6.1, R8.4)."""

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.accounts import roles
from crm.celery import app as celery_app
from crm.core.notifications import selectors, services
from crm.core.notifications.context_processors import notifications as notifications_cp
from crm.core.notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated():
    """Inline Celery and an empty cache (user ids repeat between tests)."""
    cache.clear()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old
    cache.clear()


@pytest.fixture
def zh_user(make_user):
    return make_user(roles.SALES_REP, username="zh", language="zh-hans", email="zh@example.com")


@pytest.fixture
def en_user(make_user):
    return make_user(roles.SALES_REP, username="en", language="en", email="en@example.com")


def note(user, **fields):
    return services.notify(recipients=[user], title=fields.pop("title", "Hello"), **fields)[0]


# notify -------------------------------------------------------------------------------------------


def test_notify_creates_one_row_per_active_recipient(zh_user, en_user, make_user, rep):
    """R5.6.1: duplicates and inactive users are skipped."""
    inactive = make_user(roles.SALES_REP, username="gone", is_active=False)
    rows = services.notify(
        recipients=[zh_user, en_user, zh_user, inactive],
        title="Order paid",
        body="Order 42 was paid.",
        url="/sales/orders/42/",
        level="success",
        category="orders",
        actor=rep,
    )
    assert [n.recipient for n in rows] == [zh_user, en_user]
    assert Notification.objects.count() == 2
    stored = Notification.objects.get(recipient=en_user)
    assert (stored.title, stored.url, stored.level, stored.category, stored.actor) == (
        "Order paid",
        "/sales/orders/42/",
        "success",
        "orders",
        rep,
    )
    assert stored.read_at is None
    assert stored.emailed_at is None
    assert services.notify(recipients=[inactive], title="x") == []


def test_notify_translates_lazy_text_per_recipient(zh_user, en_user):
    """R5.6.1: lazy strings are stored in each recipient's language."""
    services.notify(
        recipients=[zh_user, en_user],
        title=_("Yes"),
        body=services.lazy_format(_("%(answer)s, really."), answer=_("Yes")),
    )
    assert Notification.objects.get(recipient=zh_user).title == "是"
    assert Notification.objects.get(recipient=zh_user).body == "是, really."
    assert Notification.objects.get(recipient=en_user).title == "Yes"


@pytest.mark.parametrize(
    "bad_url",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "relative/path"],
)
def test_notify_refuses_external_urls(rep, bad_url):
    """R7.2.2 negative: a notification may only link inside the CRM."""
    with pytest.raises(ValidationError):
        services.notify(recipients=[rep], title="x", url=bad_url)
    assert not Notification.objects.exists()


def test_notify_refuses_unknown_level(rep):
    with pytest.raises(ValidationError):
        services.notify(recipients=[rep], title="x", level="purple")


def test_email_is_sent_on_commit_in_the_recipients_language(
    zh_user, en_user, make_user, django_capture_on_commit_callbacks
):
    """R5.6.1: one email per recipient with an address, in their language; retries send nothing twice."""
    no_address = make_user(roles.SALES_REP, username="noaddr", email="")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = services.notify(
            recipients=[zh_user, en_user, no_address], title=_("Yes"), body="Body text", url="/x/", email=True
        )
    assert mail.outbox == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == ["en@example.com", "zh@example.com"]
    by_to = {m.to[0]: m for m in mail.outbox}
    assert "是" in by_to["zh@example.com"].subject
    assert "Yes" in by_to["en@example.com"].subject
    assert "Body text" in by_to["en@example.com"].body
    assert "/x/" in by_to["en@example.com"].body
    assert Notification.objects.filter(emailed_at__isnull=False).count() == 2

    assert services.notification_send_emails(ids=[n.pk for n in rows]) == 0  # idempotent
    assert len(mail.outbox) == 2


def test_no_email_unless_asked(zh_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        note(zh_user)
    assert mail.outbox == []


# unread count ------------------------------------------------------------------------------------


def test_unread_count_is_cached_and_invalidated(rep, django_assert_num_queries):
    """R6.2.4: the bell costs no query once cached; every write invalidates it."""
    with django_assert_num_queries(1):
        assert selectors.unread_count(rep) == 0
    with django_assert_num_queries(0):
        assert selectors.unread_count(rep) == 0

    first = note(rep)
    note(rep)
    assert selectors.unread_count(rep) == 2
    services.notification_mark_read(user=rep, pk=first.pk)
    assert selectors.unread_count(rep) == 1
    services.notification_mark_read(user=rep, pk=first.pk)  # again: no change
    assert selectors.unread_count(rep) == 1
    assert services.notification_mark_all_read(user=rep) == 1
    with django_assert_num_queries(1):
        assert selectors.unread_count(rep) == 0


def test_mark_read_of_someone_elses_notification_is_404(rep, make_user):
    from django.http import Http404

    other = make_user(roles.SALES_REP, username="other")
    theirs = note(other)
    with pytest.raises(Http404):
        services.notification_mark_read(user=rep, pk=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert services.notification_mark_all_read(user=rep) == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_context_processor(rep, django_assert_num_queries):
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert notifications_cp(request) == {"notification_unread_count": 0}
    note(rep)
    request.user = rep
    with django_assert_num_queries(0):
        value = notifications_cp(request)["notification_unread_count"]  # lazy: nothing yet
    assert int(str(value)) == 1
    assert bool(value)


# pages ----------------------------------------------------------------------------------------------


def test_pages_need_login(client, rep):
    n = note(rep)
    for path in (
        reverse("notifications:notification-list"),
        reverse("notifications:notification-open", args=[n.pk]),
    ):
        response = client.get(path)
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]
    response = client.post(reverse("notifications:notification-mark-read", args=[n.pk]))
    assert response.status_code == 302
    n.refresh_from_db()
    assert n.read_at is None


def test_list_newest_first_with_unread_highlighted_and_bell(client_for, rep, make_user):
    other = make_user(roles.SALES_REP, username="other")
    note(other, title="Not for you")
    old = note(rep, title="Older")
    new = note(rep, title="Newer")
    services.notification_mark_read(user=rep, pk=old.pk)
    response = client_for(rep).get(reverse("notifications:notification-list"))
    assert response.status_code == 200
    assert list(response.context["notifications"]) == [new, old]
    body = response.content.decode()
    assert "Not for you" not in body
    assert body.index("Newer") < body.index("Older")
    assert body.count("list-group-item-primary") == 1  # only the unread one
    assert 'class="bi bi-bell"' in body
    assert reverse("notifications:notification-mark-all-read") in body


def test_list_empty_state(client_for, rep):
    response = client_for(rep).get(reverse("notifications:notification-list"))
    assert response.status_code == 200
    assert "crm-empty-state" in response.content.decode()
    assert reverse("notifications:notification-mark-all-read") not in response.content.decode()


def test_list_paginates_with_constant_queries(client_for, rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(rep)
    note(rep)
    client.get(reverse("notifications:notification-list"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("notifications:notification-list"))
    services.notify(recipients=[rep], title="again")
    for _i in range(24):
        note(rep)
    client.get(reverse("notifications:notification-list"))
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("notifications:notification-list"))
    assert len(many) == len(one)
    assert len(response.context["notifications"]) == 20
    assert response.context["page_obj"].paginator.num_pages == 2
    assert client.get(reverse("notifications:notification-list") + "?page=2").status_code == 200


def test_mark_read_htmx_returns_the_row(client_for, rep):
    n = note(rep, title="Ping")
    response = client_for(rep).post(
        reverse("notifications:notification-mark-read", args=[n.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="notification-{n.pk}"' in body
    assert "list-group-item-primary" not in body
    assert "<html" not in body
    n.refresh_from_db()
    assert n.read_at is not None


def test_mark_read_without_htmx_redirects(client_for, rep):
    n = note(rep)
    client = client_for(rep)
    assert client.get(reverse("notifications:notification-mark-read", args=[n.pk])).status_code == 405
    response = client.post(reverse("notifications:notification-mark-read", args=[n.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:notification-list")


def test_mark_all_read(client_for, rep, make_user):
    other = make_user(roles.SALES_REP, username="other")
    theirs = note(other)
    note(rep)
    note(rep)
    response = client_for(rep).post(reverse("notifications:notification-mark-all-read"))
    assert response.status_code == 302
    assert not Notification.objects.filter(recipient=rep, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_foreign_notification_is_404(client_for, rep, make_user):
    """R7.2.4, R8.4: another user's notification answers 404 everywhere."""
    other = make_user(roles.SALES_REP, username="other")
    theirs = note(other, url="/customers/")
    client = client_for(rep)
    assert client.get(reverse("notifications:notification-open", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notifications:notification-mark-read", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_open_marks_read_and_redirects_to_internal_url(client_for, rep):
    n = note(rep, url="/customers/7/?tab=orders")
    response = client_for(rep).get(reverse("notifications:notification-open", args=[n.pk]))
    assert response.status_code == 302
    assert response["Location"] == "/customers/7/?tab=orders"
    n.refresh_from_db()
    assert n.read_at is not None


@pytest.mark.parametrize("stored_url", ["https://evil.example/", "//evil.example/", "/\\evil.example", ""])
def test_open_refuses_open_redirects(client_for, rep, stored_url):
    """R7.2.2 negative: even a URL written to the table directly never sends the user off-site."""
    n = Notification.objects.create(recipient=rep, title="x", url=stored_url)
    response = client_for(rep).get(reverse("notifications:notification-open", args=[n.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:notification-list")
