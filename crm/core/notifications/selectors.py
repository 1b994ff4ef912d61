"""Reads on notifications: always the user's own."""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from .models import Notification

#: Seconds a cached unread count lives. Writes invalidate it; the timeout only bounds
#: staleness where the cache is not shared (a local-memory cache with several processes).
UNREAD_CACHE_TIMEOUT = 120


def unread_cache_key(user_id: int) -> str:
    return f"notifications:unread:{user_id}"


def unread_count(user) -> int:
    """The user's unread notifications, from the cache when possible (0 for anonymous)."""
    if user is None or not user.is_authenticated:
        return 0
    key = unread_cache_key(user.pk)
    count = cache.get(key)
    if count is None:
        count = Notification.objects.filter(recipient=user, read_at__isnull=True).count()
        cache.set(key, count, UNREAD_CACHE_TIMEOUT)
    return count


def notification_list_for_user(*, user) -> QuerySet[Notification]:
    if not user.is_authenticated:
        return Notification.objects.none()
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-pk")


def notification_get_for_user(*, user, pk) -> Notification:
    """One of the user's notifications; missing and someone else's both raise Http404."""
    try:
        return notification_list_for_user(user=user).get(pk=pk)
    except (Notification.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such notification.")) from exc
