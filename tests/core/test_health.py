"""GET /healthz: database, cache and broker checks for load balancers and monitoring (R7.5.1)."""

import pytest
from django.db import OperationalError
from django.urls import reverse

from crm.core import health

pytestmark = pytest.mark.django_db


def get(client):
    return client.get(reverse("healthz"))


def test_healthy_inline(client, settings):
    """R7.5.1: anonymous callers get 200 with every check ok; no broker means inline mode."""
    settings.CELERY_BROKER_URL = ""
    response = get(client)
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert set(data["checks"]) == {"database", "cache", "broker"}
    assert all(c["ok"] and isinstance(c["ms"], float) for c in data["checks"].values())
    assert data["checks"]["broker"]["mode"] == "inline"
    assert "no-cache" in response["Cache-Control"]


def test_healthy_with_a_reachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "memory://"
    response = get(client)
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == {
        "ok": True,
        "mode": "broker",
        "ms": pytest.approx(0, abs=2000),
    }


def test_unreachable_broker_is_503_without_secrets(client, settings):
    """R7.5.1 negative: a broker that refuses connections degrades the node; the URL stays secret."""
    settings.CELERY_BROKER_URL = "redis://:s3cret-pass@127.0.0.1:1/0"
    response = get(client)
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "degraded"
    assert data["checks"]["broker"]["ok"] is False
    assert data["checks"]["database"]["ok"]
    assert data["checks"]["cache"]["ok"]
    assert "s3cret" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_failing_cache_is_503(client, monkeypatch):
    class BrokenCache:
        def set(self, *args, **kwargs):
            pass

        def get(self, *args, **kwargs):
            return None

        def delete(self, *args, **kwargs):
            pass

    monkeypatch.setattr(health, "cache", BrokenCache())
    response = get(client)
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {
        "ok": False,
        "error": "RuntimeError",
        "ms": pytest.approx(0, abs=1000),
    }


def test_failing_database_is_503(client, monkeypatch):
    class BrokenConnection:
        def cursor(self):
            raise OperationalError("could not connect to server at db.internal")

    monkeypatch.setattr(health, "connection", BrokenConnection())
    response = get(client)
    assert response.status_code == 503
    data = response.json()
    assert data["checks"]["database"]["ok"] is False
    assert data["checks"]["database"]["error"] == "OperationalError"
    assert "db.internal" not in response.content.decode()


def test_only_get(client):
    assert client.post(reverse("healthz")).status_code == 405
