"""Celery tasks of the customers app: thin wrappers around services, idempotent, safe to retry."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services.pools import recycle_run


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def recycle_customers(self) -> dict:
    """Apply the pools' recycling rules (nightly, 02:00; see migration 0003_recycle_periodic_task).

    Idempotent: customers already returned are no longer owned and owners already warned for the
    current period are not warned again, so a retry or a second run changes nothing."""
    return recycle_run()
