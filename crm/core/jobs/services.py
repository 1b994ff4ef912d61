"""Writes on background jobs, and ``run_job``, the body every job task delegates to.

A job task is a thin Celery task that loads the job by id and calls a function doing the work::

    @shared_task(bind=True, **JOB_TASK_OPTIONS)
    def export_orders(self, job_id):
        return run_job(job_id, build_orders_export, task=self)

    def build_orders_export(job, progress) -> JobResult:
        for i, row in enumerate(rows, 1):
            ...
            progress(i, total)              # throttled: cheap to call on every row
        return JobResult(content=data, name="orders.xlsx")

The function runs in the owner's language and time zone. It raises ``JobError`` with a translated
message for failures the user should read; any other exception is logged with its traceback and
the job shows a generic message. ``run_job`` opens no transaction around the function, so
progress written by ``progress()`` is visible to the page polling the job at once.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Job
from .registry import get_job_kind

logger = logging.getLogger(__name__)

#: Minimum seconds between two progress writes that do not advance the percentage.
PROGRESS_MIN_INTERVAL = 1.0

#: Errors worth retrying: the database or the broker was briefly unreachable.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError)

#: Options for every job task: ``@shared_task(bind=True, **JOB_TASK_OPTIONS)``.
JOB_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": RETRYABLE_ERRORS,
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}

ProgressCallback = Callable[..., bool]


class JobError(Exception):
    """A failure whose message (translated, free of internals) the user may read."""


class JobCancelledError(Exception):
    """Raised by the progress callback when the job was cancelled meanwhile."""


@dataclass
class JobResult:
    """What a job function returns: an optional result file and a closing message."""

    content: bytes | File | None = None
    name: str = ""
    message: str = ""


# Creating and enqueuing ----------------------------------------------------------------------


@transaction.atomic
def job_create(*, kind: str, owner, params: dict | None = None) -> Job:
    """Create a pending job and queue its task once the transaction commits.

    With no broker configured (embedded mode) the task then runs inline, before this returns
    to the caller's caller; the returned instance is not refreshed.
    """
    try:
        get_job_kind(kind)
    except LookupError as exc:
        raise ValidationError(_("Unknown job kind."), code="unknown_kind") from exc
    job = Job(kind=kind, owner=owner, params=params or {}, celery_task_id=str(uuid.uuid4()))
    job.full_clean()
    job.save()
    transaction.on_commit(partial(job_enqueue, job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's task to the queue; if that fails the job is marked failed (logged)."""
    task = get_job_kind(job.kind).get_task()
    try:
        task.apply_async(args=[str(job.pk)], task_id=job.celery_task_id or None)
    except (*RETRYABLE_ERRORS, OSError):
        # Raised by the broker connection (kombu wraps its errors in these). In eager mode the
        # task's own failures are handled by run_job and never reach here.
        logger.exception("Could not queue job %s (%s)", job.pk, job.kind)
        job_fail(job=job, error=gettext("The job could not be queued. Please try again later."))


# State changes --------------------------------------------------------------------------------


def _refresh(job: Job, fields: list[str]) -> None:
    job.refresh_from_db(fields=fields)


def job_start(*, job: Job) -> bool:
    """Mark the job running. False if it is no longer pending or running (finished, cancelled).

    A job found already running is restarted from zero: a worker died and the broker delivered
    the task again (acks_late).
    """
    now = timezone.now()
    updated = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE_STATUSES).update(
        status=Job.Status.RUNNING, started_at=now, progress=0, processed=0, message="", error=""
    )
    _refresh(job, ["status", "started_at", "progress", "processed", "total", "message", "error"])
    job._progress_written_at = None
    return bool(updated)


def _percent(processed: int, total: int) -> int:
    if total <= 0:
        return 0
    return max(0, min(100, processed * 100 // total))


def job_progress(
    *, job: Job, processed: int, total: int | None = None, message: str = "", force: bool = False
) -> bool:
    """Record progress of a running job; returns True when a write happened.

    Throttled: it writes when the percentage moves or at least PROGRESS_MIN_INTERVAL seconds
    passed since the last write (so at most about 100 writes plus one a second), and always
    with ``force``. Raises ValueError for negative counts and JobCancelledError if the job is no
    longer running (cancelled by its owner), which stops the job function.
    """
    if processed < 0 or (total is not None and total < 0):
        raise ValueError("processed and total must not be negative")
    total = job.total if total is None else total
    percent = _percent(processed, total)
    now = time.monotonic()
    last_at = getattr(job, "_progress_written_at", None)
    unchanged = percent == job.progress and last_at is not None and now - last_at < PROGRESS_MIN_INTERVAL
    if unchanged and not force:
        job.processed, job.total = processed, total  # remembered for the next write
        return False
    message = str(message)[:255] if message else job.message
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        processed=processed, total=total, progress=percent, message=message
    )
    if not updated:
        raise JobCancelledError(str(job.pk))
    job.processed, job.total, job.progress, job.message = processed, total, percent, message
    job._progress_written_at = now
    return True


def _storage_name(job: Job, result_name: str) -> str:
    ext = os.path.splitext(result_name)[1].lower()
    ext = ext if ext[1:].isalnum() and len(ext) <= 10 else ""
    return f"{job.pk.hex}{ext}"


def job_succeed(
    *, job: Job, result_file: bytes | File | None = None, result_name: str = "", message: str = ""
) -> bool:
    """Mark the job succeeded, storing the result file. False (file discarded) if not running."""
    fields = {
        "status": Job.Status.SUCCEEDED,
        "progress": 100,
        "message": str(message)[:255],
        "finished_at": timezone.now(),
        "error": "",
    }
    if result_file is not None:
        if isinstance(result_file, bytes):
            result_file = ContentFile(result_file)
        result_name = result_name or gettext("result")
        job.result_file.save(_storage_name(job, result_name), result_file, save=False)
        fields.update(result_file=job.result_file.name, result_name=result_name[:255])
    updated = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE_STATUSES).update(**fields)
    if not updated:
        if result_file is not None:
            job.result_file.delete(save=False)
        _refresh(job, ["status", "result_file", "result_name", "finished_at"])
        return False
    if job.total and job.processed < job.total:
        Job.objects.filter(pk=job.pk).update(processed=job.total)
    job.refresh_from_db()
    _notify_owner(job)
    return True


def job_fail(*, job: Job, error: str) -> bool:
    """Mark the job failed with a message the user may read. False if it had already finished."""
    updated = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE_STATUSES).update(
        status=Job.Status.FAILED, error=str(error), finished_at=timezone.now()
    )
    job.refresh_from_db()
    if updated:
        _notify_owner(job)
    return bool(updated)


@transaction.atomic
def job_cancel(*, job: Job, actor) -> bool:
    """Cancel a pending or running job (the owner or an administrator). False if it had finished.

    A running job stops at its next progress report.
    """
    updated = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE_STATUSES).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if updated and job.celery_task_id and not _eager():
        transaction.on_commit(partial(_revoke, job.celery_task_id))
    return bool(updated)


def _eager() -> bool:
    from crm.celery import app

    return bool(app.conf.task_always_eager)


def _revoke(task_id: str) -> None:
    from crm.celery import app

    try:
        app.control.revoke(task_id)
    except Exception:  # the job is cancelled in the database either way
        logger.warning("Could not revoke task %s", task_id, exc_info=True)


def job_purge(*, older_than_days: int) -> int:
    """Delete jobs created more than ``older_than_days`` days ago, and their result files."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    count = 0
    for job in Job.objects.filter(created_at__lt=cutoff).only("pk", "result_file").iterator(chunk_size=200):
        if job.result_file:
            job.result_file.delete(save=False)
        job.delete()
        count += 1
    if count:
        logger.info("Purged %d jobs older than %d days", count, older_than_days)
    return count


def _notify_owner(job: Job) -> None:
    """Tell the owner their job finished (the bell), so they need not keep the page open."""
    if job.owner_id is None:
        return
    from crm.core.notifications.services import lazy_format, notify

    if job.status == Job.Status.SUCCEEDED:
        title = lazy_format(_("%(kind)s has finished."), kind=job.kind_label)
        level = "success"
    else:
        title = lazy_format(_("%(kind)s failed."), kind=job.kind_label)
        level = "danger"
    notify(recipients=[job.owner], title=title, url=job.get_absolute_url(), level=level, category="jobs")


# Running ------------------------------------------------------------------------------------------


def _owner_zone(owner):
    try:
        return zoneinfo.ZoneInfo(owner.time_zone) if owner else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def run_job(job_id, fn: Callable[[Job, ProgressCallback], JobResult | None], *, task=None) -> str | None:
    """Run ``fn(job, progress)`` for the job ``job_id`` and record the outcome; returns the status.

    Idempotent: a job that already finished (succeeded, failed or cancelled) is not run again.
    ``progress(processed, total=None, message="")`` reports progress (throttled). On a
    retryable error (database or broker briefly down) with retries left on ``task``, the job
    stays running and the exception propagates so Celery retries; otherwise the job fails.
    """
    job = Job.objects.select_related("owner").filter(pk=job_id).first()
    if job is None:
        logger.warning("Job %s not found; nothing to run", job_id)
        return None
    if job.is_finished:
        logger.info("Job %s is already %s; not run again", job.pk, job.status)
        return job.status
    if not job_start(job=job):
        return job.status

    def progress(processed: int, total: int | None = None, message: str = "") -> bool:
        return job_progress(job=job, processed=processed, total=total, message=message)

    language = getattr(job.owner, "language", "") or settings.LANGUAGE_CODE
    zone = _owner_zone(job.owner)
    with translation.override(language), timezone.override(zone):
        try:
            result = fn(job, progress)
        except JobCancelledError:
            logger.info("Job %s was cancelled while running", job.pk)
            job.refresh_from_db()
            return job.status
        except JobError as exc:
            job_fail(job=job, error=str(exc))
            return job.status
        except RETRYABLE_ERRORS:
            # Inline (eager) runs cannot be retried later: fail at once rather than hang.
            eager = task is None or getattr(task.request, "is_eager", False)
            if not eager and task.request.retries < (task.max_retries or 0):
                logger.warning("Job %s hit a temporary error; retrying", job.pk, exc_info=True)
                raise
            logger.exception("Job %s failed after retries", job.pk)
            job_fail(
                job=job, error=gettext("A service the job needs is unavailable. Please try again later.")
            )
            return job.status
        except Exception:
            logger.exception("Job %s (%s) failed", job.pk, job.kind)
            job_fail(
                job=job,
                error=gettext(
                    "The job failed because of an unexpected error. "
                    "The administrators can see the details in the log."
                ),
            )
            return job.status
        result = result or JobResult()
        job_succeed(job=job, result_file=result.content, result_name=result.name, message=result.message)
    return job.status
