"""Export of the customer list to .xlsx (R5.1.3, R7.2.4).

``customer_export(actor=..., filters=..., columns=...)`` exports exactly what the actor's list
shows for those filters (visibility, search, filters, sort), with the chosen columns:

* at most ``settings.EXPORT_INLINE_LIMIT`` rows (default 5,000): the file is built at once and
  returned; above: a background job of kind ``customers_export`` builds it, and the file is
  downloaded from the job page;
* streamed: openpyxl write-only workbook, rows read with ``.iterator(chunk_size=2000)`` and the
  phones/e-mails/tags prefetched per chunk, the workbook saved to a temporary file: memory stays
  flat whatever the row count;
* contact details masked unless the actor holds ``accounts.view_sensitive_data``;
* text starting with = + - @ (or a tab / carriage return) is prefixed with an apostrophe so no
  spreadsheet runs it as a formula;
* requires ``accounts.export_data``; every export is written to the audit ledger (who, filters,
  row count).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from celery import shared_task
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.core.audit.services import audit_export
from crm.core.crypto import display_sensitive
from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, job_create, run_job
from crm.core.jobs.xlsx import append_row, new_workbook

from ..selectors.records import COLUMNS, clean_columns, customer_list_for_user, filters_to_dict

EXPORT_KIND = "customers_export"
EXPORT_PERMISSION = "accounts.export_data"
DEFAULT_INLINE_LIMIT = 5000
CHUNK_SIZE = 2000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
WHAT = "customers.customer"


def inline_limit() -> int:
    return int(getattr(settings, "EXPORT_INLINE_LIMIT", DEFAULT_INLINE_LIMIT))


def can_export(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(EXPORT_PERMISSION))


def neutralise(value):
    """Text a spreadsheet could read as a formula gets a leading apostrophe; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _first(items) -> object | None:
    return items[0] if items else None


def cell_value(customer, key: str, actor):
    """The export value of one column for one customer (contact details as ``actor`` may see them)."""
    if key == "phone":
        phone = _first(getattr(customer, "phone_list", None) or [])
        return display_sensitive(actor, phone.number, "phone") if phone else ""
    if key == "email":
        email = _first(getattr(customer, "email_list", None) or [])
        return display_sensitive(actor, email.address, "email") if email else ""
    if key == "tags":
        return ", ".join(t.name for t in customer.tags.all())
    if key in ("kind", "gender", "stage", "source"):
        return getattr(customer, f"get_{key}_display")()
    if key in ("level", "team", "pool", "province", "city"):
        related = getattr(customer, key)
        return str(related) if related else ""
    if key == "owner":
        return customer.owner.get_display_name() if customer.owner else ""
    return getattr(customer, key)


@dataclass
class ExportOutcome:
    """Either the file (``content``, ``name``, ``count``) or the ``job`` building it."""

    count: int = 0
    content: bytes | None = None
    name: str = ""
    job: Job | None = None
    filters: dict = field(default_factory=dict)


def _file_name() -> str:
    return gettext("customers-%(date)s.xlsx") % {"date": timezone.localdate().isoformat()}


def write_customers_xlsx(
    *, actor, queryset, columns: Iterable[str], out, progress: Callable | None = None, total: int = 0
) -> int:
    """Stream ``queryset`` into an .xlsx written to the file object ``out``; returns the row count."""
    columns = clean_columns(columns)
    wb, ws = new_workbook(gettext("Customers"))
    append_row(ws, [gettext("ID"), *(str(COLUMNS[key].label) for key in columns)])
    count = 0
    for customer in queryset.iterator(chunk_size=CHUNK_SIZE):
        append_row(ws, [customer.pk, *(neutralise(cell_value(customer, key, actor)) for key in columns)])
        count += 1
        if progress is not None:
            progress(count, max(total, count))
    wb.save(out)
    return count


def customer_export(*, actor, filters: Mapping | None, columns: Iterable[str] | None = None) -> ExportOutcome:
    """Export the actor's filtered customer list; see the module docstring."""
    if not can_export(actor):
        raise PermissionDenied(gettext("You are not allowed to export data."))
    columns = clean_columns(columns)
    recorded = filters_to_dict(filters)
    queryset = customer_list_for_user(user=actor, filters=filters, columns=columns)
    limit = inline_limit()
    if queryset.order_by()[: limit + 1].count() > limit:
        job = job_create(kind=EXPORT_KIND, owner=actor, params={"filters": recorded, "columns": columns})
        return ExportOutcome(job=job, filters=recorded)
    with tempfile.TemporaryFile() as out:
        count = write_customers_xlsx(actor=actor, queryset=queryset, columns=columns, out=out)
        out.seek(0)
        content = out.read()
    audit_export(actor=actor, what=WHAT, count=count, filters={**recorded, "columns": columns})
    return ExportOutcome(count=count, content=content, name=_file_name(), filters=recorded)


def build_customers_export(job: Job, progress) -> JobResult:
    """The body of a ``customers_export`` job: runs as the job's owner, in their language."""
    actor = job.owner
    if not can_export(actor):
        raise JobError(gettext("You are not allowed to export data."))
    params = job.params or {}
    filters = params.get("filters") or {}
    columns = clean_columns(params.get("columns"))
    queryset = customer_list_for_user(user=actor, filters=filters, columns=columns)
    total = queryset.order_by().count()
    progress(0, total)
    # Closed (and removed) once the job has stored it: run_job saves the result after we return.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    count = write_customers_xlsx(
        actor=actor, queryset=queryset, columns=columns, out=out, progress=progress, total=total
    )
    out.seek(0)
    audit_export(
        actor=actor, what=WHAT, count=count, filters={**filters, "columns": columns}, message=f"job {job.pk}"
    )
    return JobResult(
        content=File(out, name="customers.xlsx"),
        name=_file_name(),
        message=gettext("%(count)d customers exported.") % {"count": count},
    )


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def export_customers(self, job_id: str):
    return run_job(job_id, build_customers_export, task=self)


register_job_kind(EXPORT_KIND, _("Customer export"), export_customers)
