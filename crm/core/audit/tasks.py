"""Celery tasks of the audit ledger. The database beat schedule runs ``checkpoint`` hourly."""

from celery import shared_task
from django.db import DatabaseError


@shared_task(
    name="crm.core.audit.tasks.checkpoint",
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=3,
)
def checkpoint() -> int | None:
    """Sign the latest entry hash (idempotent; skipped with a warning when no key exists)."""
    from .services import audit_checkpoint

    cp = audit_checkpoint()
    return cp.upto_seq if cp is not None else None
