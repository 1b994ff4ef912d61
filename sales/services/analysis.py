"""Automatic customer analysis (R5.1.3): RFM scores and segments, lifetime value, churn risk.

What counts: orders in ``COUNTED_STATUSES`` (confirmed and not cancelled or fully refunded:
pending payment, paid, shipped, completed, refund requested), each for its total less what was
refunded. For every customer with at least one such order, ``customers.CustomerMetrics`` holds:

- recency: whole days (site time zone) since the last order; frequency: number of orders;
  monetary: what they spent over their whole history;
- R, F and M scores 1 to 5 by quintile among all customers with orders (5 = most recent, most
  frequent, highest spend). The quintile boundaries are the values at 20/40/60/80% of the sorted
  customers; a customer scores one more for each boundary its value passes (R the other way
  round), so equal values always score the same;
- the segment: each of R, F, M is "high" when its score is at least ``HIGH_SCORE`` (3); the eight
  combinations are the eight classic segments (``customers.models.Segment``), e.g. high R, high F,
  high M = 重要价值客户 (important value), low R, low F, high M = 重要挽留客户 (to win back);
- average order value; average days between orders (first to last order over orders - 1, repeat
  customers only); predicted next order = last order + that average;
- churn risk: a repeat customer whose days since the last order exceed
  ``SALES_ANALYSIS_CHURN_FACTOR`` (2) times their average gap and ``SALES_ANALYSIS_CHURN_MIN_DAYS``
  (30); a one-time buyer after ``SALES_ANALYSIS_ONE_ORDER_CHURN_DAYS`` (180) days;
- lifetime value: spent so far plus ``SALES_ANALYSIS_CLV_YEARS`` (3) years at their past pace
  (average order value x orders per year since the first order, a year at least), nothing more
  for a customer at churn risk.

``Customer.last_order_at`` follows the last counted order (the customers app's "no order"
recycling rule reads it). Customers without counted orders have no metrics row and no last order.

``analysis_run_full`` computes everybody: one aggregate query over the orders, the scores in
Python, multi-row upserts of the metrics, one UPDATE for the last-order dates, then the auto-tag
rules (``sales.services.analysis_rules``). It records an ``AnalysisRun`` with the boundaries, so
``refresh_customer`` (after every order change, through a Celery task) scores one customer in a
few indexed queries the way the last full run scored everybody. The nightly run comes from Celery
beat (migration 0003); ``analysis_start`` queues one on demand as a background job.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
import zoneinfo
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from crm.core.bulk import insert_instances
from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import job_create
from customers.models import Customer, CustomerMetrics, Segment

from ..models import AnalysisRun, Order, OrderStatus

logger = logging.getLogger(__name__)

__all__ = [
    "COUNTED_STATUSES",
    "HIGH_SCORE",
    "JOB_KIND",
    "Thresholds",
    "analysis_run_full",
    "analysis_start",
    "compute_metrics",
    "current_thresholds",
    "refresh_customer",
    "refresh_customer_async",
    "segment_for",
]

COUNTED_STATUSES = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.COMPLETED,
    OrderStatus.REFUND_REQUESTED,
)
SCORES = 5
HIGH_SCORE = 3
JOB_KIND = "sales.analysis"
#: A run still "running" after this long is taken for dead (its worker was killed).
STALE_RUN = datetime.timedelta(hours=2)
WRITE_BATCH = 2000
#: From this many customers a full run writes on a second connection while it computes.
THREADED_WRITE_FROM = 20_000
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
DAY = 86400.0

SEGMENTS = {
    (True, True, True): Segment.IMPORTANT_VALUE,
    (True, False, True): Segment.IMPORTANT_DEVELOP,
    (False, True, True): Segment.IMPORTANT_KEEP,
    (False, False, True): Segment.IMPORTANT_RETAIN,
    (True, True, False): Segment.GENERAL_VALUE,
    (True, False, False): Segment.GENERAL_DEVELOP,
    (False, True, False): Segment.GENERAL_KEEP,
    (False, False, False): Segment.GENERAL_RETAIN,
}

register_job_kind(JOB_KIND, gettext_lazy("Customer analysis"), "sales.tasks.analysis.run_analysis_job")


def segment_for(r_score: int, f_score: int, m_score: int) -> str:
    """The RFM segment of three scores (each high when at least HIGH_SCORE)."""
    return SEGMENTS[(r_score >= HIGH_SCORE, f_score >= HIGH_SCORE, m_score >= HIGH_SCORE)].value


def _edges(values: Sequence) -> list:
    """The values at 20, 40, 60 and 80% of ``values`` (sorted)."""
    n = len(values)
    return [values[min(n - 1, n * k // SCORES)] for k in range(1, SCORES)] if n else []


@dataclass(frozen=True)
class Thresholds:
    """Quintile boundaries of the last full run (ascending). Empty before the first full run:
    every score is then 0 and the segment blank ("not scored yet")."""

    recency: tuple[int, ...] = ()
    frequency: tuple[int, ...] = ()
    monetary: tuple[Decimal, ...] = ()

    @classmethod
    def from_values(cls, recency: Sequence[int], frequency: Sequence[int], monetary: Sequence[int]):
        """From unsorted per-customer values (``monetary`` in cents)."""
        return cls(
            recency=tuple(_edges(sorted(recency))),
            frequency=tuple(_edges(sorted(frequency))),
            monetary=tuple(Decimal(c).scaleb(-2) for c in _edges(sorted(monetary))),
        )

    @classmethod
    def from_json(cls, data: dict | None):
        data = data or {}
        try:
            return cls(
                recency=tuple(int(v) for v in data.get("recency", ())),
                frequency=tuple(int(v) for v in data.get("frequency", ())),
                monetary=tuple(Decimal(str(v)) for v in data.get("monetary", ())),
            )
        except (TypeError, ValueError, ArithmeticError):
            return cls()

    def to_json(self) -> dict:
        return {
            "recency": list(self.recency),
            "frequency": list(self.frequency),
            "monetary": [str(v) for v in self.monetary],
        }

    def r_score(self, days: int) -> int:
        return SCORES - bisect_left(self.recency, days) if self.recency else 0

    def f_score(self, orders: int) -> int:
        return 1 + bisect_left(self.frequency, orders) if self.frequency else 0

    def m_score(self, spent: Decimal) -> int:
        return 1 + bisect_left(self.monetary, spent) if self.monetary else 0


def _site_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def compute_metrics(
    *,
    orders: int,
    spent: Decimal,
    first: datetime.datetime,
    last: datetime.datetime,
    today: datetime.date,
    thresholds: Thresholds,
    zone: datetime.tzinfo | None = None,
) -> dict:
    """The CustomerMetrics fields of one customer with ``orders`` (>= 1) counted orders."""
    zone = zone or _site_zone()
    last_day = last.astimezone(zone).date()
    first_day = first.astimezone(zone).date()
    recency = max(0, (today - last_day).days)
    spent = spent.quantize(CENT, ROUND_HALF_UP)
    average = (spent / orders).quantize(CENT, ROUND_HALF_UP)
    between = predicted = None
    if orders > 1:
        gap = (last - first).total_seconds() / DAY / (orders - 1)
        between = Decimal(repr(gap)).quantize(TENTH, ROUND_HALF_UP)
        predicted = last_day + datetime.timedelta(days=round(gap))
        limit = max(float(settings.SALES_ANALYSIS_CHURN_FACTOR) * gap, settings.SALES_ANALYSIS_CHURN_MIN_DAYS)
        churn = recency > limit
    else:
        churn = recency > settings.SALES_ANALYSIS_ONE_ORDER_CHURN_DAYS
    lifetime = spent
    if not churn:
        tenure_years = max((today - first_day).days, 365) / 365
        future = average * Decimal(repr(orders / tenure_years)) * settings.SALES_ANALYSIS_CLV_YEARS
        lifetime = (spent + future).quantize(CENT, ROUND_HALF_UP)
    r, f, m = thresholds.r_score(recency), thresholds.f_score(orders), thresholds.m_score(spent)
    return {
        "first_order_at": first,
        "last_order_at": last,
        "recency_days": recency,
        "frequency": orders,
        "monetary": spent,
        "r_score": r,
        "f_score": f,
        "m_score": m,
        "segment": segment_for(r, f, m) if r and f and m else "",
        "average_order_value": average,
        "average_days_between": between,
        "predicted_next_order": predicted,
        "lifetime_value": lifetime,
        "churn_risk": churn,
    }


def _counted_orders():
    return Order.objects.filter(status__in=COUNTED_STATUSES)


def _spent_expression():
    return Sum(
        F("total_amount") - F("refunded_amount"), output_field=DecimalField(max_digits=16, decimal_places=2)
    )


def current_thresholds() -> Thresholds:
    """The boundaries of the last successful full run (empty before the first one)."""
    data = (
        AnalysisRun.objects.filter(status=AnalysisRun.Status.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("thresholds", flat=True)
        .first()
    )
    return Thresholds.from_json(data)


# Incremental update -------------------------------------------------------------------------------


def refresh_customer(customer_id: int) -> CustomerMetrics | None:
    """Recompute one customer's metrics, last order date and auto-tags (after an order changed).

    Idempotent; a handful of indexed queries whatever the size of the database. Returns the
    metrics, or None when the customer has no counted order (any metrics row is then removed).
    """
    return refresh_customers([customer_id]).get(customer_id)


@transaction.atomic
def refresh_customers(customer_ids, *, busy: list[int] | None = None) -> dict[int, CustomerMetrics | None]:
    """``refresh_customer`` for many customers at once (an order import's batch): one grouped
    aggregate, one query each for the metrics rows to update, create and remove, and the last order
    dates that changed. Returns {customer id: metrics or None}; ids of missing customers are left
    out.

    With ``busy`` (a list), customers whose rows another transaction holds (an import writing their
    next orders) are skipped and their ids appended to it, for a later try: the refresh then never
    waits for a row while holding others, so it cannot deadlock with that transaction.
    """
    from .analysis_rules import active_rules, auto_tag_rules_apply_customer

    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return {}
    free = None
    if busy is not None and connection.features.has_select_for_update_skip_locked:
        free = set(
            Customer.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    existing_customers, created, with_metrics = {}, {}, set()
    for pk, last_order_at, created_at, metrics_pk in Customer.objects.filter(pk__in=ids).values_list(
        "pk", "last_order_at", "created_at", "metrics__pk"
    ):
        if free is not None and pk not in free:
            busy.append(pk)  # held by another transaction: left for a later try
            continue
        existing_customers[pk] = last_order_at
        created[pk] = created_at
        if metrics_pk is not None:
            with_metrics.add(pk)
    if free is not None:
        busy.sort()
        ids = [pk for pk in ids if pk in existing_customers]
    figures = {
        row["customer_id"]: row
        for row in _counted_orders()
        .filter(customer_id__in=ids)
        .values("customer_id")
        .order_by()
        .annotate(
            orders=Count("id"), spent=_spent_expression(), first=Min("ordered_at"), last=Max("ordered_at")
        )
    }
    zone = _site_zone()
    now = timezone.now()
    today = now.astimezone(zone).date()
    thresholds = current_thresholds() if figures else None
    result: dict[int, CustomerMetrics | None] = {}
    to_update, to_create = [], []
    for customer_id in ids:
        if customer_id not in existing_customers:
            continue
        row = figures.get(customer_id)
        if not row or not row["orders"]:
            result[customer_id] = None
            continue
        fields = compute_metrics(
            orders=row["orders"],
            spent=row["spent"] or Decimal(0),
            first=row["first"],
            last=row["last"],
            today=today,
            thresholds=thresholds,
            zone=zone,
        )
        fields["computed_at"] = now
        metrics = CustomerMetrics(customer_id=customer_id, customer_created_at=created[customer_id], **fields)
        (to_update if customer_id in with_metrics else to_create).append(metrics)
        result[customer_id] = metrics
    if to_update:  # delete and insert: cheaper than an UPDATE per row or one CASE per column
        CustomerMetrics.objects.filter(customer_id__in=[m.customer_id for m in to_update]).delete()
    if to_update or to_create:
        insert_instances(CustomerMetrics, to_update + to_create)
    gone = [pk for pk, metrics in result.items() if metrics is None]
    if gone:
        CustomerMetrics.objects.filter(customer_id__in=gone).delete()
    moved = []
    for customer_id, metrics in result.items():
        last = figures[customer_id]["last"] if metrics is not None else None
        if existing_customers[customer_id] != last:
            moved.append((customer_id, last))
    if len(moved) == 1:
        Customer.objects.filter(pk=moved[0][0]).update(last_order_at=moved[0][1])
    elif moved:
        _set_last_order_dates(moved)
    rules = active_rules() if result else []
    for customer_id, metrics in result.items():
        auto_tag_rules_apply_customer(customer_id=customer_id, metrics=metrics, rules=rules)
    return result


def _set_last_order_dates(pairs: list[tuple[int, datetime.datetime | None]]) -> None:
    """One prepared UPDATE run for every (customer id, last order date) pair."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    column = connection.ops.quote_name(Customer._meta.get_field("last_order_at").column)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE id = %s",  # noqa: S608 (quoted names, bound values)
            [(connection.ops.adapt_datetimefield_value(last), pk) for pk, last in pairs],
        )


def refresh_customer_async(customer_id: int) -> None:
    """Queue the incremental update of one customer (inline without a broker).

    Called by the orders area after an order's transaction commits. If the queue is unreachable
    the refresh is logged and skipped: the nightly full run catches up.
    """
    from ..tasks.analysis import refresh_customer_metrics

    try:
        refresh_customer_metrics.delay(customer_id)
    except (OSError, ConnectionError):
        logger.exception("Could not queue the analysis refresh of customer %s", customer_id)


def refresh_customers_async(customer_ids) -> None:
    """Queue the update of many customers at once (an order import's batch); see
    ``refresh_customer_async``."""
    from ..tasks.analysis import refresh_customers_metrics

    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return
    try:
        refresh_customers_metrics.delay(ids)
    except (OSError, ConnectionError):
        logger.exception("Could not queue the analysis refresh of %d customers", len(ids))


# Full run -------------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Per-customer aggregates in compact arrays (a million customers take ~40 MB, not ~500)."""

    ids: array
    orders: array
    cents: array
    first: array
    last: array

    @classmethod
    def empty(cls):
        return cls(array("q"), array("q"), array("q"), array("d"), array("d"))


def _aggregate_rows():
    """(customer id, orders, spent, first, last) of every customer with counted orders.

    On MySQL/MariaDB the query reads the table from end to end (``USE INDEX ()``): left to itself
    the optimizer walks the (customer, time) index to avoid a temporary table and fetches every
    order by primary key from there, in random order: over 5,000,000 orders that is one random
    page read per order instead of one sequential pass (minutes instead of seconds).
    """
    queryset = (
        _counted_orders()
        .order_by()
        .values("customer_id")
        .annotate(n=Count("id"), spent=_spent_expression(), first=Min("ordered_at"), last=Max("ordered_at"))
        .values_list("customer_id", "n", "spent", "first", "last")
    )
    if connection.vendor != "mysql":
        yield from queryset.iterator(chunk_size=20_000)
        return
    sql, params = queryset.query.sql_with_params()
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = sql.replace(f"FROM {table}", f"FROM {table} USE INDEX ()", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(20_000):
            for customer_id, n, spent, first, last in rows:
                # The raw cursor gives naive UTC times (the ORM would convert them).
                yield (
                    customer_id,
                    n,
                    spent,
                    first.replace(tzinfo=datetime.UTC),
                    last.replace(tzinfo=datetime.UTC),
                )


def _aggregate(columns: _Columns) -> int:
    total = 0
    for customer_id, n, spent, first, last in _aggregate_rows():
        columns.ids.append(customer_id)
        columns.orders.append(n)
        columns.cents.append(int((spent or 0) * 100))
        columns.first.append(first.timestamp())
        columns.last.append(last.timestamp())
        total += n
    return total


def _recency_days(columns: _Columns, today: datetime.date, zone) -> array:
    out = array("q")
    for ts in columns.last:
        day = datetime.datetime.fromtimestamp(ts, tz=zone).date()
        out.append(max(0, (today - day).days))
    return out


class _Upsert:
    """Multi-row INSERT ... ON DUPLICATE KEY UPDATE (MySQL) / ON CONFLICT DO UPDATE (others)."""

    FIELDS = (
        "customer_id",
        "first_order_at",
        "last_order_at",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "segment",
        "average_order_value",
        "average_days_between",
        "predicted_next_order",
        "lifetime_value",
        "churn_risk",
        "computed_at",
    )

    def __init__(self):
        meta = CustomerMetrics._meta
        ops, qn = connection.ops, connection.ops.quote_name
        fields = [meta.get_field(name) for name in self.FIELDS]
        self.adapters = [self._adapter(f.get_internal_type(), ops) for f in fields]
        self.table = qn(meta.db_table)
        created = meta.get_field("customer_created_at")
        self.columns = ", ".join([*(qn(f.column) for f in fields), qn(created.column)])
        # A new row copies its customer's creation time (see CustomerMetrics.customer_created_at);
        # the update below leaves it alone, as it never changes.
        customers = Customer._meta
        created_of = (
            f"(SELECT {qn(customers.get_field('created_at').column)} FROM {qn(customers.db_table)} "  # noqa: S608
            f"WHERE {qn(customers.pk.column)} = %s)"
        )
        self.placeholder = "(" + ", ".join(["%s"] * len(fields) + [created_of]) + ")"
        rest = [qn(f.column) for f in fields[1:]]
        if connection.vendor == "mysql":
            self.suffix = "ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in rest)
        else:
            self.suffix = f"ON CONFLICT ({qn(fields[0].column)}) DO UPDATE SET " + ", ".join(
                f"{c} = excluded.{c}" for c in rest
            )

    @staticmethod
    def _adapter(kind: str, ops):
        if connection.vendor == "mysql":
            # Plain strings: the driver escapes them in C, several times faster than its Python
            # converters for datetimes and decimals (a million rows a run). The values are ours:
            # aware UTC datetimes, dates, decimals, booleans.
            if kind == "DateTimeField":
                return lambda v: v.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            if kind == "DateField":
                return datetime.date.isoformat
            if kind == "DecimalField":
                return str
            if kind == "BooleanField":
                return int
            return None
        if kind == "DateTimeField":
            return ops.adapt_datetimefield_value
        if kind == "DateField":
            return ops.adapt_datefield_value
        return None

    def write(self, rows: list[tuple]) -> None:
        if not rows:
            return
        adapters = self.adapters
        params = []
        for row in rows:
            params.extend(
                a(v) if a is not None and v is not None else v for a, v in zip(adapters, row, strict=True)
            )
            params.append(row[0])
        values = ", ".join([self.placeholder] * len(rows))
        # Table and column names come from the model; every value is a parameter.
        sql = f"INSERT INTO {self.table} ({self.columns}) VALUES {values} {self.suffix}"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


class _Writer:
    """Writes batches of metrics rows, on a second connection when that pays.

    Computing a batch is Python work and writing it is the database's: with ``threaded`` a worker
    thread writes batch n on its own connection while the caller computes batch n + 1 (the driver
    releases the GIL while the server works), so a run costs about the larger of the two rather
    than their sum. Used only outside a transaction (the second connection could not see it) and
    on a server database (SQLite allows one writer). ``close()`` waits for the last batch and
    re-raises the thread's error, if any.
    """

    def __init__(self, *, threaded: bool):
        self.threaded = threaded
        self.error: BaseException | None = None
        if threaded:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, name="analysis-writer", daemon=True)
            self.thread.start()
        else:
            self.upsert = _Upsert()

    def _run(self) -> None:
        try:
            upsert = _Upsert()
            while (rows := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        upsert.write(rows)
                    except BaseException as exc:  # handed to the caller by close()
                        self.error = exc
        finally:
            connection.close()  # this thread's own connection

    def write(self, rows: list[tuple]) -> None:
        if not self.threaded:
            self.upsert.write(rows)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(rows)

    def close(self) -> None:
        if self.threaded:
            self.queue.put(None)
            self.thread.join()
            if self.error is not None:
                raise self.error


def _sync_last_order_dates() -> int:
    """Customer.last_order_at := CustomerMetrics.last_order_at (NULL without a row), changed rows only."""
    qn = connection.ops.quote_name
    customer, metrics = qn(Customer._meta.db_table), qn(CustomerMetrics._meta.db_table)
    last, cid, pk = qn("last_order_at"), qn("customer_id"), qn("id")
    if connection.vendor == "mysql":
        sql = (
            f"UPDATE {customer} c LEFT JOIN {metrics} m ON m.{cid} = c.{pk} "  # noqa: S608
            f"SET c.{last} = m.{last} WHERE NOT (c.{last} <=> m.{last})"
        )
    else:
        distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
        new = f"(SELECT m.{last} FROM {metrics} m WHERE m.{cid} = {customer}.{pk})"  # noqa: S608
        sql = f"UPDATE {customer} SET {last} = {new} WHERE {last} {distinct} {new}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.rowcount


def _running_run() -> AnalysisRun | None:
    return (
        AnalysisRun.objects.filter(
            status=AnalysisRun.Status.RUNNING, started_at__gte=timezone.now() - STALE_RUN
        )
        .order_by("-started_at")
        .first()
    )


def analysis_run_full(
    *,
    actor=None,
    job: Job | None = None,
    progress: Callable[..., bool] | None = None,
    trigger: str | None = None,
    stdout=None,
) -> AnalysisRun:
    """Analyse every customer; return the recorded run (ValidationError if one is running).

    Not one transaction: each batch of upserts commits on its own (a million rows in one
    transaction would hold locks and undo for minutes); a failed run leaves earlier batches
    written, which the next run overwrites, and records the failure on its AnalysisRun.
    ``progress(processed, total, message)`` is the job's progress callback.
    """
    from .analysis_rules import auto_tag_rules_apply_all

    if _running_run() is not None:
        raise ValidationError(_("An analysis is already running. Wait for it to finish."), code="running")
    trigger = trigger or (AnalysisRun.Trigger.MANUAL if actor is not None else AnalysisRun.Trigger.SCHEDULED)
    run = AnalysisRun.objects.create(actor=actor, trigger=trigger, started_at=timezone.now())
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now
        if stdout is not None:
            stdout.write(f"{name}: {timings[name]:.1f} s")

    def report(processed: int, total: int, message: str) -> None:
        if progress is not None:
            progress(processed, total, message)

    try:
        zone = _site_zone()
        started = run.started_at
        today = started.astimezone(zone).date()
        report(0, 1, _("Reading orders…"))
        columns = _Columns.empty()
        run.orders = _aggregate(columns)
        step("aggregate")
        count = len(columns.ids)
        recency = _recency_days(columns, today, zone)
        thresholds = Thresholds.from_values(recency, columns.orders, columns.cents)
        step("thresholds")
        writer = _Writer(
            threaded=count >= THREADED_WRITE_FROM
            and connection.vendor != "sqlite"
            and not connection.in_atomic_block
        )
        segments: Counter = Counter()
        churn = 0
        rows: list[tuple] = []
        fields = _Upsert.FIELDS[1:-1]
        try:
            for i in range(count):
                first = datetime.datetime.fromtimestamp(columns.first[i], tz=datetime.UTC)
                last = datetime.datetime.fromtimestamp(columns.last[i], tz=datetime.UTC)
                values = compute_metrics(
                    orders=columns.orders[i],
                    spent=Decimal(columns.cents[i]).scaleb(-2),
                    first=first,
                    last=last,
                    today=today,
                    thresholds=thresholds,
                    zone=zone,
                )
                segments[values["segment"]] += 1
                churn += values["churn_risk"]
                rows.append((columns.ids[i], *(values[f] for f in fields), started))
                if len(rows) >= WRITE_BATCH:
                    writer.write(rows)
                    rows = []
                    report(i + 1, count, _("Scoring customers…"))
            writer.write(rows)
        finally:
            writer.close()
        step("score_and_write")
        CustomerMetrics.objects.filter(computed_at__lt=started).delete()
        step("remove_stale")
        report(count, count, _("Updating last order dates…"))
        changed = _sync_last_order_dates()
        step("last_order_dates")
        report(count, count, _("Applying auto-tag rules…"))
        tagged = auto_tag_rules_apply_all(actor=actor, now=started)
        step("auto_tags")
    except Exception as exc:
        AnalysisRun.objects.filter(pk=run.pk).update(
            status=AnalysisRun.Status.FAILED,
            finished_at=timezone.now(),
            error=str(exc)[:2000],
            timings=timings,
        )
        raise
    run.status = AnalysisRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.customers = count
    run.churn_risk = churn
    run.segments = {s.value: segments.get(s.value, 0) for s in Segment}
    run.thresholds = thresholds.to_json()
    run.timings = {**timings, "last_order_dates_changed": changed, "tags": tagged}
    with transaction.atomic():
        run.save()
        audit_record(
            action=AuditAction.OTHER,
            actor=actor,
            obj=run,
            changes={"customers": count, "orders": run.orders, "churn_risk": churn, "segments": run.segments},
            message=f"Customer analysis: {count} customers, {run.orders} orders",
        )
    return run


def analysis_start(*, actor) -> Job:
    """Queue a full analysis as a background job (the on-demand action)."""
    if not actor.has_perm("sales.run_analysis"):
        raise ValidationError(_("You may not run the customer analysis."), code="permission")
    recent = Job.objects.filter(
        kind=JOB_KIND, status__in=Job.ACTIVE_STATUSES, created_at__gte=timezone.now() - STALE_RUN
    )
    if _running_run() is not None or recent.exists():
        raise ValidationError(_("An analysis is already running. Wait for it to finish."), code="running")
    return job_create(kind=JOB_KIND, owner=actor)
