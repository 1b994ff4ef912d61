"""``python -m tests.perf.run --mode orders``: server time of the order list, the filtered and
searched order list and the order page on a large database (R5.2.1, R8.2). Target (issue 4): p95
under 200 ms for each.

The database (``--db-url``, e.g. crm_perf with 1,000,000 customers and the orders of
``manage.py seed_orders_scale``) is used as it is: never migrated, seeded or written to (only the
session rows of the signed-in users). Its encryption and blind-index keys must be those the data
was written with: the ones ``DEBUG=1 manage.py`` uses (the .env file or the development defaults),
or FIELD_ENCRYPTION_KEYS / BLIND_INDEX_KEY from the environment. DEBUG is off.

Each page is requested in-process through Django's test Client (middleware, view, queries,
template; no network), ``--warmup`` times untimed and ``--requests`` times timed, as each of the
``--as`` users (default: salesmgr, who sees his team's orders, sales1, who sees his own, and admin,
who sees all). The order page is timed over 50 different orders the user may see, in turn. The
search terms are taken from the data: an order number and a recipient phone of a visible order,
and the name of its customer.

    python -m tests.perf.run --mode orders --db-url mysql://root@127.0.0.1:3306/crm_perf
"""

from __future__ import annotations

import datetime
import os
import statistics
import time

TARGET_P95_MS = 200.0


def _configure(args) -> str:
    from tests.perf.wsgi import server_environment

    env = server_environment(args.db_url)
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    env["CACHE_URL"] = os.environ.get("PERF_CACHE_URL", "locmemcache://perf")
    os.environ.update(env)
    return args.db_url


def _declared_role_permissions() -> None:
    """Let each role hold the permissions ``crm.accounts.roles`` declares for it, in memory.

    A benchmark database seeded before the sales app's permissions existed has role groups that
    ``sync_roles`` (run after ``migrate``) has not updated yet; this run never writes to the
    database, so instead of syncing it answers the group-permission query from the declared sets
    (the query still runs, as it would against synced groups).
    """
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    from crm.accounts import roles

    def group_permissions(self, user_obj):
        wanted: set[str] = set()
        for name in user_obj.groups.values_list("name", flat=True):
            if name in roles.ROLE_LABELS:
                wanted |= roles.permissions_for(name)
        condition = Q(pk__in=[])
        for item in wanted - {"*"}:
            app_label, codename = item.split(".", 1)
            condition |= Q(content_type__app_label=app_label, codename=codename)
        return Permission.objects.filter(condition)

    ModelBackend._get_group_permissions = group_permissions


def _pages_for(user) -> list[tuple[str, str, str]]:
    """(name, kind, url) of the pages timed for ``user``."""
    from django.utils import timezone

    from crm.core.visibility import visible_to
    from sales.models import Order, Product

    visible = visible_to(user, Order.objects.all())
    sample = list(visible.order_by("-ordered_at", "-id").values_list("pk", flat=True)[:2000:40])
    newest_id = visible.order_by("-ordered_at", "-id").values_list("pk", flat=True).first()
    newest = Order.objects.select_related("customer").filter(pk=newest_id).first()
    phone_order = visible.exclude(recipient_phone_index="").order_by("-ordered_at", "-id").first()
    since = (timezone.localdate() - datetime.timedelta(days=365)).isoformat()
    month = (timezone.localdate() - datetime.timedelta(days=30)).isoformat()
    product = Product.objects.filter(sku__startswith="SCALE-").order_by("sku").values_list("sku", flat=True)
    sku = product[7] if product.count() > 7 else (product.first() or "")
    name = newest.customer.name if newest else "张"
    pages = [
        ("order list", "list", "/sales/orders/"),
        ("filtered: status", "list", "/sales/orders/?status=pending_payment"),
        ("filtered: channel, 30 days", "list", f"/sales/orders/?channel=tmall&date_from={month}"),
        (
            "filtered: 5 filters",
            "list",
            f"/sales/orders/?status=completed&channel=tmall&channel=jd&date_from={since}"
            "&amount_min=100&amount_max=2000",
        ),
        (
            "filtered + sorted by total",
            "list",
            f"/sales/orders/?status=completed&date_from={since}&sort=-total",
        ),
        ("product filter", "list", f"/sales/orders/?product={sku}"),
        ("search: order number", "search", f"/sales/orders/?q={newest.number if newest else 'SX'}"),
        ("search: customer name", "search", f"/sales/orders/?q={name}"),
        ("search: broad name (张)", "search", "/sales/orders/?q=张"),
    ]
    if phone_order is not None:
        pages.append(("search: phone", "search", f"/sales/orders/?q={phone_order.recipient_phone}"))
    pages.append(("receivables", "list", "/sales/receivables/?due=all"))
    pages.append(("order page", "detail", [f"/sales/orders/{pk}/" for pk in sample] or ["/sales/orders/0/"]))
    return pages


def _rows(user, url) -> tuple[int | None, bool | None]:
    """How many orders the list at ``url`` holds for ``user`` (as its paginator counts them)."""
    from urllib.parse import urlsplit

    from django.http import QueryDict

    from sales.forms.orders import OrderFilterForm
    from sales.selectors import orders as selectors

    if not isinstance(url, str) or (not url.startswith("/sales/orders/?") and url != "/sales/orders/"):
        return None, None
    form = OrderFilterForm(QueryDict(urlsplit(url).query) or None, user=user)
    values = form.filter_values() if form.is_bound and form.is_valid() else {}
    filters = selectors.OrderFilters.from_mapping(values)
    paginator = selectors.OrderPaginator(
        selectors.order_list_for_user(user=user, filters=filters),
        25,
        cap=selectors.count_cap_for(filters),
        count_queryset=selectors.order_count_queryset_for_user(user=user, filters=filters),
    )
    return paginator.count, paginator.capped


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _time(client, urls, *, requests: int, warmup: int):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    urls = urls if isinstance(urls, list) else [urls]
    for i in range(warmup):
        response = client.get(urls[i % len(urls)])
        if response.status_code != 200:
            raise SystemExit(f"GET {urls[i % len(urls)]} answered {response.status_code}")
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        client.get(urls[0])
    query_count = len(queries.captured_queries)  # read now: each request clears the query log
    timings = []
    for i in range(requests):
        start = time.perf_counter()
        response = client.get(urls[i % len(urls)])
        timings.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {urls[i % len(urls)]} answered {response.status_code} during the run")
    return timings, query_count, response


def run_orders_perf(args) -> dict:
    _configure(args)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from crm.accounts.models import User
    from sales.models import Order

    _declared_role_permissions()
    total_orders = Order.objects.count()
    results = []
    for username in args.as_users_orders:
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        for name, kind, urls in _pages_for(user):
            timings, queries, _response = _time(client, urls, requests=args.requests, warmup=args.warmup)
            p95 = _percentile(timings, 95)
            rows, capped = _rows(user, urls)
            results.append(
                {
                    "page": name,
                    "kind": kind,
                    "user": username,
                    "url": urls if isinstance(urls, str) else f"{len(urls)} orders in turn",
                    "requests": args.requests,
                    "p50_ms": round(statistics.median(timings), 1),
                    "p95_ms": round(p95, 1),
                    "max_ms": round(max(timings), 1),
                    "queries": queries,
                    "rows": rows,
                    "capped": capped,
                    "target_p95_ms": TARGET_P95_MS,
                    "meets_target": p95 <= TARGET_P95_MS,
                }
            )
            r = results[-1]
            print(
                f"{username:<9} {name:<28} p50 {r['p50_ms']:>7.1f}  p95 {r['p95_ms']:>7.1f}  "
                f"max {r['max_ms']:>7.1f} ms  {r['queries']:>3} queries  "
                f"rows {r['rows']}{'+' if r['capped'] else ''}"
                f"{'' if r['meets_target'] else '  MISSED'}"
            )
    return {
        "mode": "orders",
        "database": connection.vendor,
        "orders": total_orders,
        "debug": False,
        "results": results,
    }
