"""Celery tasks of the jobs app: thin wrappers around services, safe to retry."""

from celery import shared_task
from django.conf import settings

from .exports import build_users_export
from .services import JOB_TASK_OPTIONS, job_purge, run_job

#: Days a finished job and its result file are kept (setting JOBS_RETENTION_DAYS).
DEFAULT_RETENTION_DAYS = 30


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def export_users(self, job_id: str):
    return run_job(job_id, build_users_export, task=self)


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def purge_old_jobs(self, older_than_days: int | None = None) -> int:
    days = older_than_days or getattr(settings, "JOBS_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    return job_purge(older_than_days=days)
