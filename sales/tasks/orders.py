"""Celery tasks of the orders area: thin wrappers around sales.services.payments."""

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
def send_payment_reminders(self) -> dict:
    """Remind owners of instalments falling due and of overdue ones (daily, 08:30; migration sales
    0004). Idempotent: each instalment remembers when it was reminded, so a retry sends nothing twice."""
    from sales.services.payments import payment_reminders_send

    return payment_reminders_send()
