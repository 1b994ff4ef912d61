"""Running an order import: upload sessions, preview, inline run or background job, error report.

The flow: ``import_session_create`` keeps the upload under MEDIA_ROOT/order_imports/<token>/ and
refuses hostile or malformed files with a translated message (the file reading is the customer
import's: .xlsx read as values never formulas, .csv in UTF-8 or GBK, password-protected, old .xls,
zip bombs, too many columns or rows refused); the user maps the columns (``auto_mapping`` and the
templates); ``run_import(dry_run=True)`` previews the first rows inside a transaction that is rolled
back; ``import_start`` runs it inline for small files, else as a job of kind ``sales_order_import``
(crm.core.jobs: progress, cancel, the summary and the .xlsx error report as its result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from crm.core.jobs.models import Job
from crm.core.jobs.services import JobError, JobResult, job_create, run_job
from crm.core.regions import selectors as regions
from customers.services import imports as customer_imports
from customers.services import records as customer_records
from customers.services.imports import reading
from customers.services.imports import sessions as customer_sessions
from sales.models import Channel

from . import limits
from .fields import Template, auto_mapping, validate_mapping
from .parsing import RowParser, group_rows
from .writing import BatchRolledBackError, BatchWriter, ImportReport

logger = logging.getLogger(__name__)

ImportFileError = customer_imports.ImportFileError


def _forbidden() -> ValidationError:
    return ValidationError(gettext("You are not allowed to import orders."), code="forbidden")


def inspect_file(
    path: Path | str, filename: str = "", *, rows_file: Path | None = None
) -> tuple[list[str], int]:
    """(column titles, number of non-blank rows); ImportFileError when it cannot be imported. With
    ``rows_file`` the rows are kept there as read (the customers import's rows file), and the
    preview and the import read that instead of parsing the workbook again."""
    return customer_imports.inspect_file(path, filename, rows_file=rows_file, limit=limits.max_rows())


# Upload sessions ---------------------------------------------------------------------------------


def imports_root() -> Path:
    return ImportSession.root()


class ImportSession(customer_sessions.UploadSession):
    """An uploaded order export waiting between the steps, in MEDIA_ROOT/order_imports/<token>/
    (the customer import's upload sessions, with the order import's choices)."""

    folder = "order_imports"

    @property
    def channel(self) -> str:
        return self.meta.get("channel", "")

    @property
    def track_stock(self) -> bool:
        return self.meta.get("track_stock", True)

    @property
    def owner_id(self) -> int | None:
        return self.meta.get("assign_to")


def _check_assignee(actor, assign_to) -> int | None:
    if assign_to is None or getattr(assign_to, "pk", None) == actor.pk:
        return None
    if not customer_records.can_assign_to(actor, assign_to):
        raise ValidationError({"assign_to": gettext("You may not make this user the owner.")})
    return assign_to.pk


def import_session_create(
    *,
    actor,
    uploaded,
    template: Template | None = None,
    channel: str = "",
    assign_to=None,
    track_stock: bool = True,
) -> ImportSession:
    """Store an upload, inspect it and propose a mapping; ImportFileError if it cannot be imported.

    ``channel``: the channel of the orders when the file has no channel column (default: the
    template's). ``assign_to``: the owner of the customers the import creates (default: the actor).
    ``track_stock=False``: the orders are history and move no stock (``Order.stock_tracked``).
    """
    if not limits.can_import(actor):
        raise _forbidden()
    import_sessions_cleanup()
    channel = channel if channel in Channel.values else (template.channel if template else "")
    assignee = _check_assignee(actor, assign_to)
    session = customer_sessions.upload_store(
        ImportSession,
        actor=actor,
        uploaded=uploaded,
        meta={
            "channel": channel,
            "template": template.key if template else "",
            "assign_to": assignee,
            "track_stock": bool(track_stock),
        },
        max_rows=limits.max_rows(),
    )
    session.meta["mapping"] = auto_mapping(session.headers, template)
    session.save()
    return session


def import_session_get(*, user, token: str) -> ImportSession:
    """The user's own upload; Http404 for a missing, expired or someone else's token."""
    return customer_sessions.upload_session_get(
        ImportSession, user=user, token=token, hours=limits.session_hours()
    )


def import_session_set_mapping(
    *, session: ImportSession, mapping: list[str], channel: str | None = None
) -> None:
    if channel is not None:
        session.meta["channel"] = channel if channel in Channel.values else ""
    if len(mapping) != len(session.headers):
        raise ValidationError(gettext("The column mapping does not fit this file."), code="mapping")
    validate_mapping(mapping, channel=session.channel)
    session.meta["mapping"] = list(mapping)
    session.save()


def import_sessions_cleanup(*, max_age_hours: int | None = None) -> int:
    """Delete uploads older than ORDER_IMPORT_SESSION_HOURS; returns how many."""
    hours = max_age_hours if max_age_hours is not None else limits.session_hours()
    return customer_sessions.upload_sessions_cleanup(ImportSession, hours=hours)


# The import --------------------------------------------------------------------------------------


class _DryRunDoneError(Exception):
    pass


def run_import(
    *,
    actor,
    path: Path | str,
    mapping: list[str],
    channel: str = "",
    filename: str = "",
    assign_to=None,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[..., object] | None = None,
    total: int | None = None,
    fast_path: bool = True,
    track_stock: bool = True,
) -> ImportReport:
    """Import (or with ``dry_run`` only check) the orders of a file; returns the report.

    Rows are read in batches of ORDER_IMPORT_BATCH (an order's rows are never split between two
    batches); each batch is one transaction, each order a savepoint in it. ``limit`` stops after
    that many rows (the preview); ``progress(rows done, total)`` is called after each batch.
    ``fast_path=False`` writes every order through the services one by one (see ``bulk``; the
    tests compare the two). ``track_stock=False`` imports the orders as history that moves no stock.
    """
    if not limits.can_import(actor):
        raise _forbidden()
    validate_mapping(mapping, channel=channel)
    table = customer_imports.open_table(path, filename)
    report = ImportReport()
    try:
        if len(mapping) != len(table.headers):
            raise ValidationError(gettext("The column mapping does not fit this file."), code="mapping")
        parser = RowParser(headers=table.headers, mapping=mapping, channel=channel)
        writer = BatchWriter(
            actor=actor, owner=assign_to, report=report, fast_path=fast_path, track_stock=track_stock
        )
        with regions.memoized():
            if dry_run:
                try:
                    with transaction.atomic():
                        _run_batches(table, parser, writer, report, limit, progress, total)
                        raise _DryRunDoneError
                except _DryRunDoneError:
                    pass
            else:
                _run_batches(table, parser, writer, report, limit, progress, total)
    finally:
        table.close()
    return report


#: How many times a batch is written when the database keeps choosing it as a deadlock victim.
BATCH_ATTEMPTS = 5
DEADLOCK = 1213  # MySQL/MariaDB ER_LOCK_DEADLOCK


def _write_batch(writer: BatchWriter, groups) -> None:
    """Write one batch in one transaction. When the database rolls the transaction back to break a
    deadlock (an analysis refresh or another user's change holding the same customers' rows), the
    writer and the batch are put back as they were and the batch is written again (not in a
    preview, whose outer transaction is lost with it)."""
    attempts = BATCH_ATTEMPTS if _outside_transaction() else 1
    for attempt in range(1, attempts + 1):
        restore = writer.restore_point(groups)
        try:
            with transaction.atomic():
                writer.write(groups)
            return
        except (BatchRolledBackError, OperationalError) as exc:
            if attempt == attempts or not _rolled_back(exc):
                raise
            logger.warning("Order import: batch rolled back by the database (%s); writing it again", exc)
            restore()
            time.sleep(0.2 * attempt)


def _outside_transaction() -> bool:
    return not transaction.get_connection().in_atomic_block


def _rolled_back(exc: Exception) -> bool:
    """A deadlock victim: the database undid the whole transaction (MySQL/MariaDB error 1213)."""
    if isinstance(exc, BatchRolledBackError):
        return True
    return bool(exc.args) and exc.args[0] == DEADLOCK


def _run_batches(table, parser: RowParser, writer: BatchWriter, report: ImportReport, limit, progress, total):
    size = limits.batch_size()
    cap = limits.max_rows()
    parsed = []
    current = None
    checked = 0

    def flush(rows, open_group, final: bool):
        nonlocal checked
        groups, open_group = group_rows(rows, current=open_group)
        if final and open_group is not None:
            groups.append(open_group)
            open_group = None
        _write_batch(writer, groups)
        checked += sum(len(g.rows) for g in groups)
        if progress is not None:
            progress(checked, total or report.rows)
        return open_group

    for number, values in table.rows:
        if reading.is_blank(values):
            continue
        report.rows += 1
        if report.rows > cap:
            raise reading.too_many_rows_error(cap)
        if limit is not None and report.rows > limit:
            continue  # counted, not checked
        parsed.append(parser.parse(number, values))
        if len(parsed) >= size:
            current = flush(parsed, current, final=False)
            parsed = []
    current = flush(parsed, current, final=True)


# Running: inline or as a job ----------------------------------------------------------------------


def session_assignee(session: ImportSession):
    if not session.owner_id:
        return None
    return get_user_model().objects.filter(pk=session.owner_id, is_active=True).first()


def import_start(*, actor, session: ImportSession) -> Job:
    """Run the import of an upload: inline for small files, else as a background job."""
    if not limits.can_import(actor):
        raise _forbidden()
    validate_mapping(session.mapping, channel=session.channel)
    params = {"token": session.token}
    if session.row_count > limits.inline_rows():
        return job_create(kind=limits.IMPORT_KIND, owner=actor, params=params)
    job = Job.objects.create(kind=limits.IMPORT_KIND, owner=actor, params=params)
    run_job(str(job.pk), build_order_import)
    job.refresh_from_db()
    return job


def error_report_xlsx(report: ImportReport) -> bytes:
    """The rows with errors as .xlsx: row, column, value (neutralised), reason."""
    return customer_imports.error_report_xlsx(report)


def build_order_import(job: Job, progress) -> JobResult:
    """The body of the ``sales_order_import`` job: import the upload named in job.params."""
    actor = job.owner
    if actor is None or not limits.can_import(actor):
        raise JobError(gettext("You are not allowed to import orders."))
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
            channel=session.channel,
            filename=session.filename,
            assign_to=session_assignee(session),
            progress=progress,
            total=session.row_count,
            track_stock=session.track_stock,
        )
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    with transaction.atomic():
        audit_record(
            action=AuditAction.OTHER,
            actor=actor,
            object_type="sales.order_import",
            object_id=str(job.pk),
            object_repr=session.filename[:255],
            changes={
                "file": session.filename,
                "rows": report.rows,
                "orders_created": report.created,
                "orders_updated": report.updated,
                "orders_unchanged": report.unchanged,
                "customers_created": report.customers_created,
                "error_rows": report.error_count,
                "channel": session.channel,
                "track_stock": session.track_stock,
            },
            message=f"order import, job {job.pk}",
        )
    session.delete()
    message = report.summary()
    if report.errors:
        name = gettext("order-import-errors-%(date)s.xlsx") % {"date": timezone.localdate().isoformat()}
        return JobResult(content=error_report_xlsx(report), name=name, message=message)
    return JobResult(message=message)
