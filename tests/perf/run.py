"""Performance harness: server time and query count of key pages, and seed_demo at scale (R8.2).

    python -m tests.perf.run                          # pages, 200 requests each, temp SQLite DB
    python -m tests.perf.run --requests 500 --db-url mysql://root@127.0.0.1:3306/crm_perf
    python -m tests.perf.run --mode seed-scale --scale 1 10 30
    python -m tests.perf.run --debug                  # with DEBUG on, like the quick start
    python -m tests.perf.run --mode wsgi --db-url mysql://root@127.0.0.1:3306/crm_perf   # real server
    python -m tests.perf.run --mode export-memory --db-url mysql://root@127.0.0.1:3306/crm_perf
    python -m tests.perf.run --mode import --rows 100000 --reimport     # a fresh database only
    python -m tests.perf.run --mode order-import --rows 100000 --reimport --later   # a fresh database only
    python -m tests.perf.run --mode quote-pdf --requests 50       # signed quote PDFs, 20 and 200 lines
    python -m tests.perf.run --mode orders --db-url mysql://root@127.0.0.1:3306/crm_perf   # order pages
    python -m tests.perf.run --mode analysis --db-url mysql://root@127.0.0.1:3306/crm_perf  # RFM run

The application runs in-process behind Django's test Client (no network, no web server), so the
numbers are the server's own time per request: middleware, view, queries, template. Each run
migrates and seeds a database (a temporary SQLite file unless --db-url is given; that database is
migrated and seeded idempotently, so use a disposable one), warms up, then times every page.
Results are printed and written to reports/perf/<mode>-<timestamp>.json (and <mode>-latest.json).

``--mode wsgi`` (tests/perf/wsgi.py) instead serves the customer pages from waitress or gunicorn with
DEBUG off and times them over HTTP, signed in through the login form; it uses the database as it is.
``--mode export-memory`` measures the peak memory of exporting every customer (tests/perf/export.py).
``--mode import`` times the customer import of a generated .xlsx (tests/perf/imports.py).

To add a page, append a ``Page`` to ``PAGES``: a name, a URL (or a callable returning one, given
the logged-in user), and the demo user to log in as (None = anonymous).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Page:
    name: str
    url: str | Callable[..., str]
    user: str | None = None  # a seed_demo username; None = anonymous
    status: int = 200
    target_p50_ms: float | None = None


PAGES = [
    Page("login", "/accounts/login/", user=None, target_p50_ms=15),
    Page("home", "/", user="sales1", target_p50_ms=15),
    Page("home (manager)", "/", user="salesmgr"),
]


def configure_environment(*, db_url: str | None, debug: bool) -> str:
    """Set the environment the settings read, before Django is imported. Returns the database URL."""
    if not db_url:
        tmp = tempfile.mkdtemp(prefix="crm-perf-")
        db_url = f"sqlite:///{tmp}/perf.sqlite3"
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "crm.settings",
            "DATABASE_URL": db_url,
            "DEBUG": "true" if debug else "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": f"1:{key}",
            "BLIND_INDEX_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
            "CELERY_BROKER_URL": "",
            "CACHE_URL": os.environ.get("PERF_CACHE_URL", "locmemcache://perf"),
            "LOG_LEVEL": "WARNING",
            "AXES_ENABLED": "true",
        }
    )
    os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="crm-perf-media-"))
    os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="crm-perf-static-"))
    return db_url


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def prepare_database(*, scale: int = 1, stdout=None) -> float:
    """Migrate and seed; returns the seconds seed_demo took."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    start = time.perf_counter()
    call_command("seed_demo", scale=scale, stdout=stdout or open(os.devnull, "w"))  # noqa: SIM115
    return time.perf_counter() - start


def measure_pages(*, requests: int, warmup: int, pages: list[Page]) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from crm.accounts.models import User

    results = []
    for page in pages:
        client = Client()
        user = None
        if page.user:
            user = User.objects.get(username=page.user)
            client.force_login(user)
        url = page.url(user) if callable(page.url) else page.url
        for _ in range(warmup):
            response = client.get(url)
            if response.status_code != page.status:
                raise SystemExit(
                    f"{page.name}: GET {url} answered {response.status_code}, expected {page.status}"
                )
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        query_count = len(queries.captured_queries)  # now: each request clears the query log
        timings = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            if response.status_code != page.status:
                raise SystemExit(f"{page.name}: GET {url} answered {response.status_code} during the run")
        p50 = statistics.median(timings)
        results.append(
            {
                "page": page.name,
                "url": url,
                "user": page.user,
                "requests": requests,
                "p50_ms": round(p50, 2),
                "p95_ms": round(percentile(timings, 95), 2),
                "max_ms": round(max(timings), 2),
                "mean_ms": round(statistics.fmean(timings), 2),
                "queries": query_count,
                "bytes": len(response.content),
                "target_p50_ms": page.target_p50_ms,
                "meets_target": None if page.target_p50_ms is None else p50 <= page.target_p50_ms,
            }
        )
    return results


def write_report(mode: str, payload: dict, output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = output / f"{mode}-{stamp}.json"
    text = json.dumps(payload, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    (output / f"{mode}-latest.json").write_text(text, encoding="utf-8")
    return path


def print_pages(results: list[dict]) -> None:
    header = f"{'page':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}  target"
    print(header)
    print("-" * len(header))
    for r in results:
        target = "" if r["target_p50_ms"] is None else f"p50 <= {r['target_p50_ms']} ms: "
        verdict = "" if r["meets_target"] is None else ("ok" if r["meets_target"] else "MISSED")
        print(
            f"{r['page']:<18} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f} "
            f"{r['queries']:>8}  {target}{verdict}"
        )


def run_pages(args) -> dict:
    import django

    django.setup()
    from django.db import connection

    seed_seconds = prepare_database(scale=args.scale[0])
    results = measure_pages(requests=args.requests, warmup=args.warmup, pages=PAGES)
    print_pages(results)
    return {
        "mode": "pages",
        "database": connection.vendor,
        "debug": args.debug,
        "scale": args.scale[0],
        "seed_seconds": round(seed_seconds, 2),
        "results": results,
    }


def run_seed_scale(args) -> dict:
    """Times seed_demo --scale N on a fresh database for each N (each run in its own process)."""
    import subprocess

    results = []
    for scale in args.scale:
        cmd = [sys.executable, "-m", "tests.perf.run", "--mode", "_seed-one", "--scale", str(scale)]
        if args.db_url:
            cmd += ["--db-url", args.db_url]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        results.append(result)
        print(
            f"seed_demo --scale {scale}: {result['first_run_s']:.2f} s "
            f"(again: {result['second_run_s']:.2f} s), {result['users']} users"
        )
    return {"mode": "seed-scale", "results": results}


def run_seed_one(args) -> None:
    import django

    django.setup()
    from crm.accounts.models import User

    first = prepare_database(scale=args.scale[0])
    second = prepare_database(scale=args.scale[0])
    print(
        json.dumps(
            {
                "scale": args.scale[0],
                "first_run_s": round(first, 3),
                "second_run_s": round(second, 3),
                "users": User.objects.count(),
            }
        )
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode",
        choices=[
            "pages",
            "seed-scale",
            "wsgi",
            "export-memory",
            "import",
            "order-import",
            "orders",
            "quote-pdf",
            "analysis",
            "_seed-one",
        ],
        default="pages",
    )
    parser.add_argument("--db-url", help="database to use (default: a new temporary SQLite file)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per page first (default 20)")
    parser.add_argument("--scale", type=int, nargs="+", default=[1], help="seed_demo --scale value(s)")
    parser.add_argument("--debug", action="store_true", help="run with DEBUG on (the quick start's mode)")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "perf")
    wsgi = parser.add_argument_group("--mode wsgi / export-memory")
    wsgi.add_argument("--server", choices=["waitress", "gunicorn"], default="waitress")
    wsgi.add_argument("--threads", type=int, default=4, help="waitress threads (default 4)")
    wsgi.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    wsgi.add_argument(
        "--as", dest="as_users", nargs="+", default=["salesmgr", "admin"], help="demo users to sign in as"
    )
    wsgi.add_argument("--password", default="Demo-2026-crm", help="their password (seed_demo's default)")
    wsgi.add_argument("--name-term", default="张伟", help="name fragment to search for")
    wsgi.add_argument("--last4", default="5678", help="last four phone digits to search for")
    wsgi.add_argument("--province", default="330000", help="province code for the filtered list")
    wsgi.add_argument("--export-as", default="admin", help="export-memory: the user who exports")
    imports = parser.add_argument_group("--mode import")
    imports.add_argument("--rows", type=int, default=100_000, help="rows of the generated file (100,000)")
    imports.add_argument("--import-as", default="salesmgr", help="the demo user who imports")
    imports.add_argument("--reimport", action="store_true", help="then import the same file again")
    imports.add_argument(
        "--inline-strings", action="store_true", help="write strings inline, as streaming writers do"
    )
    imports.add_argument("--later", action="store_true", help="order-import: then a later overlapping export")
    imports.add_argument(
        "--broker",
        default="",
        help="order-import: a Redis URL (a database of its own: it is emptied); the import's follow-up "
        "tasks (audit checkpoints, analysis refresh) then go to a Celery worker started here, as in "
        "production, instead of running inline",
    )
    orders = parser.add_argument_group("--mode orders")
    orders.add_argument(
        "--orders-as",
        dest="as_users_orders",
        nargs="+",
        default=["salesmgr", "sales1", "admin"],
        help="orders: demo users to time the order pages as",
    )
    quote_pdf = parser.add_argument_group("--mode quote-pdf")
    quote_pdf.add_argument("--lines", type=int, default=20, help="quote-pdf: lines of the typical quote (20)")
    analysis = parser.add_argument_group("--mode analysis")
    analysis.add_argument(
        "--samples", type=int, default=200, help="analysis: incremental updates timed (200)"
    )
    analysis.add_argument(
        "--list-requests", type=int, default=20, help="analysis: filtered list reads timed (20)"
    )
    analysis.add_argument(
        "--seed", type=int, default=4, help="analysis: random seed of the sampled customers"
    )
    analysis.add_argument(
        "--no-rules", action="store_true", help="analysis: do not add the demo auto-tag rules"
    )
    analysis.add_argument(
        "--skip-full", action="store_true", help="analysis: time only the incremental update"
    )
    analysis.add_argument(
        "--list-as",
        nargs="+",
        default=[],
        help="analysis: the users (seed_demo usernames) whose filtered customer list is timed "
        "(default: an administrator)",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    if args.mode in ("wsgi", "export-memory", "orders", "analysis"):
        # The database is used as it is, with the keys it was written with (see tests/perf/wsgi.py).
        db_url = args.db_url or ""
        if args.mode == "analysis":
            from tests.perf.analysis import run_analysis_perf

            payload = run_analysis_perf(args)
        elif args.mode == "orders":
            from tests.perf.orders import run_orders_perf

            payload = run_orders_perf(args)
        elif args.mode == "wsgi":
            from tests.perf.wsgi import run_wsgi

            payload = run_wsgi(args)
        else:
            from tests.perf.export import run_export_memory

            payload = run_export_memory(args)
    else:
        db_url = configure_environment(db_url=args.db_url, debug=args.debug)
        if args.mode == "_seed-one":
            run_seed_one(args)
            return 0
        if args.mode == "import":
            from tests.perf.imports import run_import_perf

            payload = run_import_perf(args)
        elif args.mode == "order-import":
            from tests.perf.order_import import run_order_import_perf

            payload = run_order_import_perf(args)
        elif args.mode == "quote-pdf":
            from tests.perf.quotes import run_quote_pdf_perf

            payload = run_quote_pdf_perf(args)
        else:
            payload = run_pages(args) if args.mode == "pages" else run_seed_scale(args)
    payload.update(
        {
            "command": "python -m tests.perf.run " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine(),
            "database_url": db_url.split("@")[-1],
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    path = write_report(args.mode, payload, args.output)
    print(f"\nwritten {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    missed = [r for r in payload["results"] if r.get("meets_target") is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
