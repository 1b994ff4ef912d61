"""Writes on notifications: ``notify`` (the one way to tell users something) and read marks.

Language: a notification is stored already translated, in its recipient's language, so the
list and the bell cost no translation work and an email says the same as the bell. Pass
``title``/``body`` as lazy strings -- ``gettext_lazy("...")``, or ``lazy_format(gettext_lazy(
"Order %(number)s was paid."), number=order.number)`` for parameters -- and ``notify`` turns
them into text once per recipient inside ``translation.override(recipient.language)``. A plain
``str`` is stored as it is for everyone (use it for user-entered text such as a ticket subject).

Email: with ``email=True`` a Celery task sends one message per recipient with an address after
the transaction commits (``send_notification_emails``); its subject and body templates are
rendered in the recipient's language too. ``emailed_at`` makes the task safe to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from .models import Notification
from .selectors import notification_get_for_user, unread_cache_key

logger = logging.getLogger(__name__)


def _interpolate(message, params: dict) -> str:
    return str(message) % params


_lazy_interpolate = lazy(_interpolate, str)


def lazy_format(message, **params):
    """A lazy string: ``message`` (a gettext_lazy string with %(name)s placeholders) translated,
    then filled with ``params``, when it is turned into text -- in the language active then."""
    return _lazy_interpolate(message, params)


def is_internal_url(url: str) -> bool:
    """True for a path on this site ("/customers/1/"); False for other hosts and schemes."""
    return (
        url.startswith("/")
        and not url.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(url, allowed_hosts=None)
    )


def invalidate_unread_count(user_ids: Iterable[int]) -> None:
    """Forget cached unread counts now and again after commit (a concurrent request may have
    cached the old count between the two)."""
    keys = [unread_cache_key(pk) for pk in set(user_ids)]
    if not keys:
        return
    cache.delete_many(keys)
    transaction.on_commit(partial(cache.delete_many, keys))


def _unique_active(recipients) -> list:
    seen, users = set(), []
    for user in recipients:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        users.append(user)
    return users


@transaction.atomic
def notify(
    *,
    recipients,
    title,
    body="",
    url="",
    level: str = Notification.Level.INFO,
    category: str = "",
    email: bool = False,
    actor=None,
) -> list[Notification]:
    """Create one notification per active recipient (duplicates ignored) and return them.

    ``url`` must be a path inside the CRM (ValidationError otherwise); ``level`` one of
    Notification.Level. With ``email`` the recipients with an email address also get an email,
    sent after commit by a Celery task.
    """
    url = str(url or "")
    if url and not is_internal_url(url):
        raise ValidationError(_("A notification may only link to a page of the CRM."), code="external_url")
    if level not in Notification.Level.values:
        raise ValidationError(_("Unknown notification level."), code="invalid_level")
    users = _unique_active(recipients)
    if not users:
        return []
    rows = []
    for user in users:
        with translation.override(user.language or settings.LANGUAGE_CODE):
            rows.append(
                Notification(
                    recipient=user,
                    title=str(title)[:200],
                    body=str(body),
                    url=url,
                    level=level,
                    category=category[:50],
                    actor=actor,
                )
            )
    if connection.features.can_return_rows_from_bulk_insert:
        created = Notification.objects.bulk_create(rows)
    else:  # MySQL returns no ids from a bulk insert; the email task needs them
        for row in rows:
            row.save()
        created = rows
    invalidate_unread_count(user.pk for user in users)
    if email:
        ids = [n.pk for n in created if n.recipient.email]
        if ids:
            from .tasks import send_notification_emails

            transaction.on_commit(partial(send_notification_emails.delay, ids))
    return created


@transaction.atomic
def notification_mark_read(*, user, pk) -> Notification:
    """Mark one of the user's notifications read; Http404 if it is missing or someone else's."""
    notification = notification_get_for_user(user=user, pk=pk)
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
        invalidate_unread_count([user.pk])
    return notification


@transaction.atomic
def notification_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    count = Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())
    invalidate_unread_count([user.pk])
    return count


def _absolute(path: str) -> str:
    base = (getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return f"{base}{path}" if path else ""


def notification_send_emails(*, ids: Iterable[int]) -> int:
    """Email the given notifications not yet emailed, each in its recipient's language.

    Marks each ``emailed_at`` right after sending it, so a retry after a failure skips the ones
    already sent. Returns the number sent.
    """
    sent = 0
    pending = (
        Notification.objects.filter(pk__in=list(ids), emailed_at__isnull=True)
        .select_related("recipient")
        .order_by("pk")
    )
    for notification in pending:
        user = notification.recipient
        if not user.email or not user.is_active:
            continue
        with translation.override(user.language or settings.LANGUAGE_CODE):
            context = {
                "notification": notification,
                "user": user,
                "link": _absolute(notification.url),
            }
            subject = " ".join(render_to_string("notifications/email/subject.txt", context).split())
            text = render_to_string("notifications/email/body.txt", context)
        send_mail(subject, text, None, [user.email])
        Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        sent += 1
    return sent
