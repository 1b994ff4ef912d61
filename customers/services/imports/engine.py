"""The import itself (R5.1.3): rows read in batches, parsed, matched, then created, updated or skipped.

For each batch of CUSTOMER_IMPORT_BATCH rows (default 1,000), in one transaction:

1. every row is parsed (``RowParser``); a row repeating a phone, e-mail or platform account of an
   earlier row of the file, or repeating an earlier row entirely, is an error;
2. the existing customers matching the batch are found with four queries (``matching``);
3. a matched row is skipped, or with the "update" choice applied through ``customer_update`` when it
   changes something (an update that changes nothing writes nothing: no row, no audit entry);
4. the new customers are created together (``creating.bulk_write``: a few multi-row INSERTs and one
   batched audit append), or one by one through ``customer_create`` when CUSTOMER_IMPORT_BULK is off
   or the bulk insert fails.

Each created or updated customer keeps the fingerprint of its row, so importing the same file again
matches every row, even one without phone, e-mail or platform account, and changes nothing. A batch
commits on its own: an import stopped half-way (a worker restart) keeps what it wrote, and running it
again imports only the rest.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.core.jobs.xlsx import append_row, new_workbook, workbook_bytes

from ...models import ImportFingerprint
from .. import records
from . import creating
from .limits import batch_size, can_import, max_rows
from .mapping import validate_mapping
from .matching import differs, find_existing, load_customers, matches_of, snapshots, update_changes
from .parsing import ParsedRow, RowError, RowParser, service_errors
from .reading import Table, collector_paused, is_blank, neutralise, open_table, too_many_rows_error

logger = logging.getLogger(__name__)

PREVIEW_SAMPLE = 20


@dataclass
class ImportReport:
    total: int = 0
    checked: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    error_rows: set[int] = field(default_factory=set)

    @property
    def error_count(self) -> int:
        """Rows with at least one error."""
        return len(self.error_rows)

    def add_errors(self, errors: list[RowError]) -> None:
        self.errors.extend(errors)
        self.error_rows.update(e.row for e in errors)

    def summary(self) -> str:
        return gettext(
            "Created %(created)d, updated %(updated)d, unchanged %(unchanged)d, skipped %(skipped)d, "
            "errors %(errors)d."
        ) % {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "errors": self.error_count,
        }


class Policy:
    UPDATE = "update"
    SKIP = "skip"
    CHOICES = [(UPDATE, _("Update the existing customer")), (SKIP, _("Skip the row"))]


ACTION_LABELS = {
    "create": _("Create"),
    "update": _("Update"),
    "unchanged": _("Unchanged"),
    "skip": _("Skip (already exists)"),
}


def _row_sample(row: ParsedRow, action: str) -> dict:
    data = row.data
    address = (data.get("addresses") or [{}])[0]
    region = address.get("region")
    return {
        "row": row.number,
        "action": action,
        "name": data.get("name", ""),
        "kind": data.get("kind", ""),
        "phones": ", ".join(p["number"] for p in data.get("phones", ())),
        "emails": ", ".join(e["address"] for e in data.get("emails", ())),
        "level": data.get("level"),
        "source": data.get("source", ""),
        "region": " ".join(r.name for r in region.path) if region else "",
        "owner": data.get("owner"),
        "tags": ", ".join(data.get("tags", ())),
    }


class _DryRunDoneError(Exception):
    pass


def run_import(
    *,
    actor,
    path: Path | str,
    mapping: list[str],
    policy: str = Policy.SKIP,
    filename: str = "",
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[..., object] | None = None,
    total: int | None = None,
) -> ImportReport:
    """Import (or with ``dry_run`` only check) the rows of a file; returns the report.

    ``limit`` stops checking after that many rows (preview; the rest are counted).
    ``progress(processed, total)`` is called after each batch.
    """
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    validate_mapping(mapping)
    report = ImportReport()
    table = open_table(path, filename)
    if len(mapping) != len(table.headers):
        table.close()
        raise ValidationError(gettext("The column mapping does not fit this file."), code="mapping")
    run = _Run(
        actor=actor, parser=RowParser(actor=actor, headers=table.headers, mapping=mapping), policy=policy
    )
    try:
        if dry_run:
            try:
                with transaction.atomic():
                    run.all(table, report, limit, progress, total)
                    raise _DryRunDoneError
            except _DryRunDoneError:
                pass
        else:
            run.all(table, report, limit, progress, total)
    finally:
        table.close()
    return report


def _batches(table: Table, limit: int | None, report: ImportReport) -> Iterator[list[tuple[int, list]]]:
    batch: list[tuple[int, list]] = []
    size = batch_size()
    cap = max_rows()
    for number, values in table.rows:
        if is_blank(values):
            continue
        report.total += 1
        if report.total > cap:
            raise too_many_rows_error()
        if limit is not None and report.total > limit:
            continue  # counted, not checked
        batch.append((number, values))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Run:
    actor: object
    parser: RowParser
    policy: str
    # The first row of the file holding each phone, e-mail, account and fingerprint.
    seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def all(self, table, report, limit, progress, total) -> None:
        bulk = bool(getattr(settings, "CUSTOMER_IMPORT_BULK", True))
        with collector_paused():
            for batch in _batches(table, limit, report):
                self.batch(batch, report, bulk=bulk)
                gc.collect(1)  # the batch's cycles, if any: young objects only, cheap
                if progress is not None:
                    progress(report.checked, total or report.checked)

    def _mark_repeats(self, rows: list[ParsedRow]) -> None:
        """Errors for rows repeating a phone, e-mail or account of an earlier row, or a whole row."""
        seen = self.seen
        for row in rows:
            if row.errors:
                continue
            for kind, key, column in row.keys:
                first = seen.get((kind, key))
                if first is not None:
                    row.error(
                        column,
                        "",
                        gettext("The same phone, e-mail or platform account as row %(row)d of this file.")
                        % {"row": first},
                    )
                    break
            if not row.errors and ("fingerprint", row.fingerprint) in seen:
                first = seen[("fingerprint", row.fingerprint)]
                row.error("", "", gettext("This row repeats row %(row)d of this file.") % {"row": first})
            if not row.errors:
                for kind, key, _column in row.keys:
                    seen.setdefault((kind, key), row.number)
                seen.setdefault(("fingerprint", row.fingerprint), row.number)

    def batch(self, batch: list[tuple[int, list]], report: ImportReport, *, bulk: bool) -> None:
        rows = [self.parser.parse(number, values) for number, values in batch]
        self._mark_repeats(rows)
        existing = find_existing([r for r in rows if not r.errors])
        matched_ids = {cid for ids in existing.values() for cid in ids}
        customers = snapshots(self.actor, matched_ids, rows) if self.policy == Policy.UPDATE else {}
        done: list[tuple[ParsedRow, str]] = []
        pending: list[ParsedRow] = []
        fingerprints: list[ImportFingerprint] = []
        with transaction.atomic():
            for row in rows:
                action, customer = self._row(report, row, existing, customers, bulk=bulk)
                if action == "pending":
                    pending.append(row)
                    continue
                if action:
                    done.append((row, action))
                known = existing.get(("fingerprint", row.fingerprint), ())
                if customer is not None and row.fingerprint and customer.pk not in known:
                    fingerprints.append(ImportFingerprint(customer=customer, fingerprint=row.fingerprint))
            if pending:
                done.extend((row, "create") for row in self._create_together(report, pending))
            if fingerprints:
                ImportFingerprint.objects.bulk_create(fingerprints)
        for row, action in sorted(done, key=lambda item: item[0].number):
            if len(report.sample) >= PREVIEW_SAMPLE:
                break
            report.sample.append(_row_sample(row, action))
        report.checked += len(rows)

    def _row(self, report, row: ParsedRow, existing, customers, *, bulk=False) -> tuple[str, object]:
        """Skip, update or create one row: (action, the customer written or None). The action is ""
        after an error, "pending" for a creation left to ``_create_together``."""
        if row.errors:
            report.add_errors(row.errors)
            return "", None
        matches = matches_of(row, existing)
        if len(matches) > 1:
            row.error(
                "",
                "",
                gettext(
                    "The phone, e-mail or platform account of this row belong to several existing customers."
                ),
            )
            report.add_errors(row.errors)
            return "", None
        if matches and self.policy != Policy.UPDATE:
            report.skipped += 1
            return "skip", None
        if not matches and bulk:
            return "pending", None
        try:
            if matches:
                customer_id = next(iter(matches))
                return self._update(report, row, customer_id, customers.get(customer_id))
            data = dict(row.data)
            data.setdefault("owner", self.actor)
            with transaction.atomic():
                customer = records.customer_create(actor=self.actor, **data)
            report.created += 1
            return "create", customer
        except ValidationError as exc:
            report.add_errors(service_errors(self.parser, row, exc))
        except DatabaseError:
            logger.exception("Customer import: row %s could not be written", row.number)
            report.add_errors([RowError(row.number, "", "", gettext("This row could not be saved."))])
        return "", None

    def _update(self, report, row: ParsedRow, customer_id: int, snapshot) -> tuple[str, object]:
        if snapshot is None:
            row.error(
                "",
                "",
                gettext("This customer already exists and you may not change it (deleted or not yours)."),
            )
            report.add_errors(row.errors)
            return "", None
        data = {k: v for k, v in row.data.items() if k != "owner"}
        customer = None
        if differs(snapshot, data):  # the whole customer is read only when something differs
            customer = load_customers(self.actor, {customer_id}).get(customer_id)
        changes = update_changes(customer, data) if customer is not None else {}
        if not changes:
            report.unchanged += 1
            return "unchanged", None
        with transaction.atomic():
            customer = records.customer_update(actor=self.actor, customer=customer, **changes)
        report.updated += 1
        return "update", customer

    def _create_together(self, report: ImportReport, rows: list[ParsedRow]) -> list[ParsedRow]:
        """Create the customers of many rows with a few bulk inserts; returns the rows created. If the
        bulk insert fails (say a concurrent writer took a platform account), the rows go one by one
        through customer_create instead."""
        valid, errors = creating.validate_new(self.parser, rows)
        report.add_errors(errors)
        if not valid:
            return []
        try:
            with transaction.atomic():
                creating.bulk_write(self.actor, self.parser, valid)
        except DatabaseError:
            logger.warning("Customer import: bulk insert failed; creating the rows one by one", exc_info=True)
            self.parser.forget_tags()  # tags created in the rolled-back savepoint are gone
            created = []
            for row, _scalars, _lists in valid:
                action, customer = self._row(report, row, {}, {}, bulk=False)
                if action == "create":
                    created.append(row)
                    if row.fingerprint:
                        ImportFingerprint.objects.create(customer=customer, fingerprint=row.fingerprint)
            return created
        report.created += len(valid)
        return [row for row, _scalars, _lists in valid]


# Error report -----------------------------------------------------------------------------------


def error_report_xlsx(report: ImportReport) -> bytes:
    """The rows with errors as .xlsx: row, column, value (neutralised), reason."""
    wb, ws = new_workbook(gettext("Import errors"))
    append_row(ws, [gettext("Row"), gettext("Column"), gettext("Value"), gettext("Reason")])
    for error in sorted(report.errors, key=lambda e: e.row):
        append_row(
            ws, [error.row, neutralise(error.column), neutralise(error.value), neutralise(error.reason)]
        )
    return workbook_bytes(wb)
