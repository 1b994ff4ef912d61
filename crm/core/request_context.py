"""Who is acting and from where, for code far from the request (the audit ledger, services).

RequestContextMiddleware sets it for each request; Celery tasks and commands run with no
request, and record the actor they are given explicitly.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""
    user_id: int | None = None
    request_id: str = ""


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("crm_request", default=None)


def client_ip(request) -> str | None:
    """The client address; behind PROXY_COUNT trusted proxies, taken from X-Forwarded-For."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", 0) or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def current() -> RequestContext:
    return _current.get() or RequestContext()


def set_current(ctx: RequestContext | None):
    return _current.set(ctx)


def reset(token) -> None:
    _current.reset(token)
