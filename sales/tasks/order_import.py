"""Celery tasks of the order import area: the job that imports a large order export."""

from celery import shared_task

from crm.core.jobs.services import JOB_TASK_OPTIONS, run_job


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def import_orders(self, job_id: str):
    """Import the upload named by the job (kind ``sales_order_import``); idempotent per job."""
    from sales.services.order_import import build_order_import

    return run_job(job_id, build_order_import, task=self)
