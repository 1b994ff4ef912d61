"""Celery tasks of the analysis area: thin wrappers around sales.services.analysis and
sales.services.analysis_rules."""

import logging

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError

from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, run_job

logger = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError, ConnectionError),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(bind=True, **RETRY)
def refresh_customer_metrics(self, customer_id: int) -> str | None:
    """Recompute one customer's analysis after one of their orders changed. Idempotent."""
    from sales.services.analysis import refresh_customer

    metrics = refresh_customer(int(customer_id))
    return metrics.segment if metrics is not None else None


@shared_task(bind=True, acks_late=True)
def run_analysis_nightly(self) -> int | None:
    """The nightly full analysis (Celery beat, 03:00; migration sales 0003). Skipped, not failed,
    when another run is still going; never retried (the next night runs again)."""
    from sales.services.analysis import analysis_run_full

    try:
        return analysis_run_full().pk
    except ValidationError:
        logger.warning("Nightly customer analysis skipped: another run is still going")
        return None


def _run(job, progress) -> JobResult:
    from django.utils.translation import gettext as _

    from sales.services.analysis import analysis_run_full

    try:
        run = analysis_run_full(actor=job.owner, job=job, progress=progress)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    return JobResult(
        message=_("%(customers)s customers and %(orders)s orders analysed in %(seconds)s s.")
        % {"customers": f"{run.customers:,}", "orders": f"{run.orders:,}", "seconds": f"{run.seconds:,.0f}"}
    )


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def run_analysis_job(self, job_id: str):
    """The on-demand full analysis, as a background job (sales.services.analysis.analysis_start)."""
    return run_job(job_id, _run, task=self)


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def apply_auto_tag_rule_job(self, job_id: str):
    """Apply one auto-tag rule (with the other rules of its tag) as a background job (kind
    ``sales_autotag_apply``, queued by sales.services.analysis_rules.auto_tag_rule_apply_start).
    Safe to retry: applying again finds the tags already right."""
    from sales.services.analysis_rules import auto_tag_rule_apply_job

    return run_job(job_id, auto_tag_rule_apply_job, task=self)


#: Tries of a batch refresh that skip customers held by another transaction; the last one waits.
BUSY_ATTEMPTS = 5


@shared_task(bind=True, **RETRY)
def refresh_customers_metrics(self, customer_ids: list[int], attempt: int = 0) -> int:
    """Recompute the analysis of many customers (an order import's batch). Idempotent.

    Customers whose rows another transaction holds (the import writing their next orders) are
    queued again a little later rather than waited for (see ``refresh_customers``)."""
    from sales.services.analysis import refresh_customers

    busy: list[int] | None = [] if attempt < BUSY_ATTEMPTS else None
    done = refresh_customers([int(pk) for pk in customer_ids], busy=busy)
    if busy:
        refresh_customers_metrics.apply_async((busy, attempt + 1), countdown=2 * (attempt + 1))
    return len(done)
