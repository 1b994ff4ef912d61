"""Running a customer import: inline for small files, otherwise as a background job of kind
``customers_import`` (a Celery task) that reports progress per batch and leaves the summary and the
error report on the job."""

from __future__ import annotations

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, job_create, run_job

from .engine import error_report_xlsx, run_import
from .limits import can_import, inline_rows
from .mapping import validate_mapping
from .sessions import ImportSession, import_session_get

IMPORT_KIND = "customers_import"

# Running: inline or as a job --------------------------------------------------------------------


def import_start(*, actor, session: ImportSession) -> Job:
    """Run the import of an upload: inline for small files, else as a background job."""
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    validate_mapping(session.mapping)
    params = {"token": session.token}
    if session.row_count > inline_rows():
        return job_create(kind=IMPORT_KIND, owner=actor, params=params)
    job = Job.objects.create(kind=IMPORT_KIND, owner=actor, params=params)
    run_job(str(job.pk), build_customers_import)
    job.refresh_from_db()
    return job


def build_customers_import(job: Job, progress) -> JobResult:
    """The body of the ``customers_import`` job: import the upload named in job.params."""
    actor = job.owner
    if actor is None or not can_import(actor):
        raise JobError(gettext("You are not allowed to import customers."))
    try:
        session = import_session_get(user=actor, token=job.params.get("token", ""))
    except Http404 as exc:
        raise JobError(gettext("The uploaded file is no longer available. Upload it again.")) from exc
    progress(0, session.row_count)
    try:
        report = run_import(
            actor=actor,
            path=session.table_path,
            mapping=session.mapping,
            policy=session.policy,
            filename=session.filename,
            progress=progress,
            total=session.row_count,
        )
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    with transaction.atomic():
        audit_record(
            action=AuditAction.OTHER,
            actor=actor,
            object_type="customers.import",
            object_id=str(job.pk),
            object_repr=session.filename[:255],
            changes={
                "file": session.filename,
                "rows": report.total,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": report.skipped,
                "errors": report.error_count,
                "policy": session.policy,
            },
            message=f"customer import, job {job.pk}",
        )
    session.delete()
    message = report.summary()
    if report.errors:
        name = gettext("import-errors-%(date)s.xlsx") % {"date": timezone.localdate().isoformat()}
        return JobResult(content=error_report_xlsx(report), name=name, message=message)
    return JobResult(message=message)


# The task keeps the name it had before the module became a package, so queued tasks still run.
@shared_task(bind=True, name="customers.services.imports.import_customers_task", **JOB_TASK_OPTIONS)
def import_customers_task(self, job_id: str):
    return run_job(job_id, build_customers_import, task=self)


register_job_kind(IMPORT_KIND, _("Customer import"), import_customers_task)


def import_rows_message(count: int) -> str:
    return ngettext("%(count)d row", "%(count)d rows", count) % {"count": count}
