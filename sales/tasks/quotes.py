"""Celery tasks of the quotes area: thin wrappers around services, idempotent, safe to retry."""

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def expire_quotes(self) -> int:
    """Expire sent quotes past their validity date (nightly at 00:30; scheduled by
    sales.hooks.quotes after migrate). Idempotent: an expired quote is not touched again."""
    from sales.services.quotes import quote_expire_due

    return quote_expire_due()
