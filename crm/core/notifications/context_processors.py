from django.utils.functional import SimpleLazyObject

from .selectors import unread_count


def notifications(request):
    """``notification_unread_count`` for the bell: lazy, so pages without the bell (htmx
    fragments) pay nothing, and cached, so pages with it usually cost no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"notification_unread_count": 0}
    return {"notification_unread_count": SimpleLazyObject(lambda: unread_count(user))}
