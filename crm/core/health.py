"""GET /healthz: is this node able to serve? For load balancers and monitoring (R7.5.1).

Answers 200 with ``{"status": "ok", "checks": {...}}`` when the database, the cache and the
Celery broker respond, and 503 with ``"status": "degraded"`` when any of them does not. Each
check reports ``ok`` and its duration in milliseconds; a failure names only the exception class
(messages may contain hosts or credentials: they go to the log). Open to anonymous callers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 2.0


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if not row or row[0] != 1:
        raise RuntimeError("unexpected answer to SELECT 1")
    return {}


def check_cache() -> dict:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("cache did not return the value just stored")
    finally:
        cache.delete(key)
    return {}


def check_broker() -> dict:
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url:
        return {"mode": "inline"}
    from kombu import Connection

    with Connection(url, connect_timeout=BROKER_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT)
    return {"mode": "broker"}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            extra = check()
        except Exception as exc:
            logger.exception("Health check %s failed", name)
            result = {"ok": False, "error": type(exc).__name__}
        else:
            result = {"ok": True, **extra}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    return results


@login_not_required
@never_cache
@require_GET
def healthz(request):
    checks = run_checks()
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503
    )
