import uuid
import zoneinfo

from django.utils import timezone, translation

from . import request_context


class RequestContextMiddleware:
    """Record the client IP and user of the request for the audit ledger."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        ctx = request_context.RequestContext(
            ip=request_context.client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            user_id=user.pk if user is not None and user.is_authenticated else None,
            request_id=request.META.get("HTTP_X_REQUEST_ID", "") or uuid.uuid4().hex,
        )
        token = request_context.set_current(ctx)
        try:
            return self.get_response(request)
        finally:
            request_context.reset(token)


class UserPreferencesMiddleware:
    """Activate the signed-in user's language and time zone (stored on the user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = translation.get_language()
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
