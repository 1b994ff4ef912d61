"""``python -m tests.perf.run --mode analysis --db-url ...``: the customer analysis at scale (R5.1.3, R8.2).

Targets (issue 4), on MariaDB with 1,000,000 customers and 5,000,000 orders
(``seed_customers_scale --count 1000000`` then ``seed_orders_scale --count 5000000``):

- the full RFM/CLV analysis (``sales.services.analysis.analysis_run_full``, what the nightly job and
  the on-demand action run) in under 5 minutes, auto-tag rules included (the three demo rules are
  created when missing; ``--no-rules`` leaves them out);
- the incremental update for one new order (``refresh_customer``, what the task queued after every
  order change runs) in under 50 ms at the 95th percentile.

The database is used as it is (no migrate, no seed; run ``migrate`` first). The full run writes what
a nightly run writes (metrics, last order dates, tags of the rules). Each incremental sample adds an
order for a random customer inside a transaction, times ``refresh_customer`` and rolls everything
back, so the database keeps no trace of it. Also timed: the customer list page's reads
(``customers.selectors.records.customer_results_for_user``: first page with the default columns and
the capped count) filtered by segment and churn risk, as an administrator.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from decimal import Decimal

FULL_TARGET_S = 300.0
INCREMENTAL_TARGET_MS = 50.0
#: Issue 3: a filtered customer list, p95 (its first page and capped count, as the list reads them).
LIST_TARGET_MS = 200.0
LIST_FILTERS = (
    ("no filter", {}),
    ("segment important value", {"segment": "important_value"}),
    ("segment general to keep", {"segment": "general_keep"}),
    ("segments important to keep or win back", {"segment": ["important_keep", "important_retain"]}),
    ("churn risk", {"churn_risk": "yes"}),
    ("segment general value and churn risk", {"segment": "general_value", "churn_risk": "yes"}),
)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _summary(name: str, timings_ms: list[float], target_ms: float | None) -> dict:
    p95 = _percentile(timings_ms, 95)
    return {
        "name": name,
        "samples": len(timings_ms),
        "p50_ms": round(statistics.median(timings_ms), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(max(timings_ms), 2),
        "target_p95_ms": target_ms,
        "meets_target": None if target_ms is None else p95 <= target_ms,
    }


def _ensure_rules() -> int:
    from customers.models import Tag
    from sales.models import AutoTagRule
    from sales.services.analysis_demo import DEMO_RULES
    from sales.services.analysis_rules import auto_tag_rule_create

    created = 0
    for spec in DEMO_RULES:
        if AutoTagRule.objects.filter(name=spec["name"]).exists():
            continue
        values = dict(spec)
        name, color = values.pop("tag")
        tag, _ = Tag.objects.get_or_create(name=name, defaults={"color": color})
        auto_tag_rule_create(actor=None, tag=tag, **values)
        created += 1
    return created


def _sample_customers(count: int, rng: random.Random) -> list[int]:
    from django.db.models import Max, Min

    from customers.models import Customer

    bounds = Customer.objects.aggregate(low=Min("pk"), high=Max("pk"))
    ids: list[int] = []
    while len(ids) < count:
        pk = (
            Customer.objects.filter(
                pk__gte=rng.randint(bounds["low"], bounds["high"]), deleted_at__isnull=True
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is not None:
            ids.append(pk)
    return ids


def _incremental(samples: int, rng: random.Random) -> list[float]:
    from django.db import transaction
    from django.utils import timezone

    from customers.models import Customer
    from sales.models import Order, OrderStatus
    from sales.services.analysis import refresh_customer

    timings = []
    for n, customer_id in enumerate(_sample_customers(samples, rng)):
        customer = Customer.objects.only("pk", "owner_id", "team_id").get(pk=customer_id)
        with transaction.atomic():
            total = Decimal(rng.randrange(1000, 200_000)) / 100
            Order.objects.create(
                number=f"PERF-{os.getpid()}-{n}",
                customer=customer,
                status=OrderStatus.PAID,
                goods_amount=total,
                total_amount=total,
                paid_amount=total,
                ordered_at=timezone.now(),
                owner_id=customer.owner_id,
                team_id=customer.team_id,
            )
            start = time.perf_counter()
            refresh_customer(customer_id)
            timings.append((time.perf_counter() - start) * 1000)
            transaction.set_rollback(True)
    return timings


def _filtered_list(user, filters: dict, repeat: int) -> list[float]:
    """What the customer list page reads: the first page of rows (default columns) and the capped count."""
    from customers.selectors.records import DEFAULT_COLUMNS, customer_results_for_user

    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = customer_results_for_user(user=user, filters=filters, columns=DEFAULT_COLUMNS)
        list(results.rows[:25])
        results.counted[: results.count_cap + 1].count()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def run_analysis_perf(args) -> dict:
    if not args.db_url:
        raise SystemExit("--mode analysis needs --db-url (a migrated, seeded database such as crm_perf)")
    from .wsgi import server_environment

    os.environ.update(server_environment(args.db_url))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers.models import Customer, CustomerMetrics
    from sales.models import Order

    rng = random.Random(args.seed)
    customers, orders = Customer.objects.count(), Order.objects.count()
    print(f"database: {customers:,} customers, {orders:,} orders ({connection.vendor})")
    rules = 0 if args.no_rules else _ensure_rules()
    results = []
    if not args.skip_full:
        from sales.services.analysis import analysis_run_full

        start = time.perf_counter()
        run = analysis_run_full(stdout=sys.stdout)
        seconds = time.perf_counter() - start
        results.append(
            {
                "name": "full analysis",
                "seconds": round(seconds, 1),
                "customers_analysed": run.customers,
                "orders_counted": run.orders,
                "churn_risk": run.churn_risk,
                "segments": run.segments,
                "steps_s": run.timings,
                "target_s": FULL_TARGET_S,
                "meets_target": seconds <= FULL_TARGET_S,
            }
        )
        print(f"full analysis: {seconds:,.1f} s for {run.customers:,} customers, {run.orders:,} orders")
    _incremental(5, rng)  # warm up connections and caches
    timings = _incremental(args.samples, rng)
    results.append(_summary("incremental update (one new order)", timings, INCREMENTAL_TARGET_MS))
    print(f"incremental: p50 {results[-1]['p50_ms']} ms, p95 {results[-1]['p95_ms']} ms")
    users = get_user_model().objects.filter(is_active=True)
    readers = (
        [users.get(username=name) for name in args.list_as]
        if args.list_as
        else [users.filter(groups__name="Administrator").order_by("pk").first()]
    )
    if CustomerMetrics.objects.exists():
        for reader in filter(None, readers):
            for name, filters in LIST_FILTERS:
                _filtered_list(reader, filters, 1)
                timings = _filtered_list(reader, filters, args.list_requests)
                result = _summary(f"customer list, {name} ({reader.username})", timings, LIST_TARGET_MS)
                results.append(result)
                print(f"{result['name']}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
    return {
        "mode": "analysis",
        "database": connection.vendor,
        "customers": customers,
        "orders": orders,
        "rules_created": rules,
        "results": results,
    }
