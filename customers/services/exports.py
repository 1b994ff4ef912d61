"""Export of the customer list to .xlsx (R5.1.3, R7.2.4).

``customer_export(actor=..., filters=..., columns=...)`` exports exactly what the actor's list
shows for those filters (visibility, search, filters, sort), with the chosen columns:

* at most ``settings.EXPORT_INLINE_LIMIT`` rows (default 5,000): the file is built at once and
  returned; above: a background job of kind ``customers_export`` builds it, and the file is
  downloaded from the job page;
* streamed: openpyxl write-only workbook, rows read in pages of ``CHUNK_SIZE`` (2,000) with the
  phones/e-mails/tags prefetched per page (``iter_pages``), the workbook saved to a temporary file:
  memory stays flat whatever the row count. Not ``.iterator()``: mysqlclient buffers a whole result
  set in the client, so one query over a million rows held them all (3.5 GB, docs/performance.md).
  In the list's default order (newest first) the pages are a keyset on the id (``WHERE id < last
  ORDER BY id DESC``); for another sort the ordered ids are read first and the rows loaded by id;
* contact details masked unless the actor holds ``accounts.view_sensitive_data``;
* text starting with = + - @ (or a tab / carriage return) is prefixed with an apostrophe so no
  spreadsheet runs it as a formula;
* requires ``accounts.export_data``; every export is written to the audit ledger (who, filters,
  row count).
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from celery import shared_task
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.core.audit.services import audit_export
from crm.core.crypto import display_sensitive
from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, job_create, run_job
from crm.core.jobs.xlsx import append_row, new_workbook

from ..selectors.records import (
    COLUMNS,
    DEFAULT_ORDERING,
    clean_columns,
    customer_list_for_user,
    filters_to_dict,
)

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


def iter_pages(queryset: QuerySet, *, page_size: int | None = None):
    """Yield the customers of ``queryset`` in its order, reading ``page_size`` rows per query (each
    page with its select_related / prefetch_related), so memory does not grow with the row count.

    The list's default order (newest first) is read as a keyset on the primary key, ``WHERE id <
    last ORDER BY id DESC LIMIT page_size``: ``created_at`` is set when a row is inserted, so id
    order is creation order, and a primary-key range stays cheap on any page (a keyset on
    ``created_at`` cost 5 to 400 ms a page on 1,000,000 rows with a small buffer pool). Any other
    order reads the ordered ids first (8 bytes a row) and then the rows by id, page by page.
    """
    page_size = page_size or CHUNK_SIZE
    ordering = tuple(queryset.query.order_by)
    unordered = queryset.order_by()
    if not ordering or ordering == DEFAULT_ORDERING:
        last_pk = None
        while True:
            page = unordered if last_pk is None else unordered.filter(pk__lt=last_pk)
            rows = list(page.order_by("-pk")[:page_size])
            yield from rows
            if len(rows) < page_size:
                return
            last_pk = rows[-1].pk
    # 8 bytes an id (a list of int objects: 36); mysqlclient still holds the id result while it is read.
    ids = array("q", queryset.prefetch_related(None).values_list("pk", flat=True).iterator())
    for start in range(0, len(ids), page_size):
        chunk = ids[start : start + page_size].tolist()
        by_pk = {customer.pk: customer for customer in unordered.filter(pk__in=chunk)}
        yield from (by_pk[pk] for pk in chunk if pk in by_pk)  # skip rows deleted meanwhile


def write_customers_xlsx(
    *, actor, queryset, columns: Iterable[str], out, progress: Callable | None = None, total: int = 0
) -> int:
    """Stream ``queryset`` into an .xlsx written to the file object ``out``; returns the row count."""
    columns = clean_columns(columns)
    wb, ws = new_workbook(gettext("Customers"))
    append_row(ws, [gettext("ID"), *(str(COLUMNS[key].label) for key in columns)])
    count = 0
    for customer in iter_pages(queryset):
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
