from django.conf import settings

from .registry import registry


def shell(request):
    """What the base layout needs: navigation for this user and the language list."""
    user = getattr(request, "user", None)
    authenticated = user is not None and user.is_authenticated
    return {
        "nav_items": registry.nav_for(user) if authenticated else [],
        "admin_nav_items": registry.nav_for(user, section="admin") if authenticated else [],
        "available_languages": settings.LANGUAGES,
    }
