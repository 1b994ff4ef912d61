from smtplib import SMTPException

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError, SMTPException, TimeoutError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_notification_emails(self, notification_ids: list[int]) -> int:
    return services.notification_send_emails(ids=notification_ids)
