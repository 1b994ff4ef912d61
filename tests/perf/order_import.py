"""``python -m tests.perf.run --mode order-import``: time of importing a large platform order export
(R5.1.3, R8.2). Target (issue 4): a 100,000-row export imported in under 3 minutes on MariaDB.

The run migrates the database (``--db-url``, default a temporary SQLite file), creates an importing
sales manager, a catalogue of 200 products with plenty of stock in one warehouse, then writes a
realistic .xlsx with the platform template's Chinese titles: about 70,000 orders of one to three
lines over about 40,000 buyers (a third of them buy more than once; masked phones on 5% of the
rows; full one-cell addresses; states from 等待买家付款 to 交易成功, 交易关闭 and 退款成功), and a
few invalid rows (unknown SKU, bad quantity). It uploads the file with ``import_session_create`` and
imports it through ``build_order_import`` run by ``crm.core.jobs.services.run_job``, exactly what
the Celery task of a large import does, and reports rows per second. ``--reimport`` then imports
the same file again (nothing may change) and ``--later`` a later export overlapping the first
(10% of the orders moved on, 5% new). The audit chain is verified at the end.

Use a database of its own (every run encrypts with new keys); for MariaDB::

    mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS crm_perf_orderimport;
        CREATE DATABASE crm_perf_orderimport CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    python -m tests.perf.run --mode order-import --reimport --later \\
        --db-url mysql://root@127.0.0.1:3306/crm_perf_orderimport
"""

from __future__ import annotations

import datetime
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

TARGET_SECONDS = 180.0
TARGET_ROWS = 100_000
PRODUCTS = 200

STATES = (
    ("交易成功", 62),
    ("卖家已发货", 10),
    ("买家已付款", 10),
    ("等待买家付款", 6),
    ("交易关闭", 8),
    ("退款中", 2),
    ("退款成功", 2),
)
NEXT_STATE = {
    "等待买家付款": "买家已付款",
    "买家已付款": "卖家已发货",
    "卖家已发货": "交易成功",
    "交易成功": "退款中",
}
STREETS = ("文三路", "人民路", "解放路", "中山路", "建设路", "和平路", "滨江大道", "世纪大道", "长江路")


def _leaves() -> list[str]:
    """'province city district' prefixes of leaf regions, as platforms write them."""
    from crm.core.regions import selectors as regions

    leaves = []
    for province in regions.provinces():
        for city in regions.children(province.code):
            districts = regions.children(city.code) or [None]
            for district in districts[:5]:
                leaves.append(" ".join(r.name_zh for r in (province, city, district) if r is not None))
    return leaves


def order_rows(count: int, *, seed: int = 20261111, start: int = 0) -> list[list]:
    """About ``count`` rows (whole orders) in the order of the platform template's columns."""
    from tests.sales.files.order_import_samples import platform_row

    rnd = random.Random(seed)
    leaves = _leaves()
    buyers = max(1, count * 2 // 5)
    states = [s for s, weight in STATES for _ in range(weight)]
    base = datetime.datetime(2026, 1, 1, 8, 0, 0)
    rows: list[list] = []
    n = start
    while len(rows) < count:
        n += 1
        buyer = rnd.randrange(buyers) if rnd.random() < 0.5 else rnd.randrange(buyers // 3 + 1)
        ordered = base + datetime.timedelta(minutes=n * 3 % 400_000)
        state = rnd.choice(states)
        phone = f"13{buyer % 10}{buyer:08d}"[:11]
        if rnd.random() < 0.05:
            phone = phone[:3] + "****" + phone[-4:]
        address = f"{rnd.choice(leaves)} {STREETS[buyer % len(STREETS)]} {buyer % 999 + 1} 号"
        for _line in range(rnd.choice((1, 1, 1, 2, 2, 3))):
            sku = f"PERF-{rnd.randrange(PRODUCTS):04d}"
            quantity: object = rnd.choice((1, 1, 1, 2, 3))
            if rnd.random() < 0.0005:
                sku = "NO-SUCH-SKU"
            elif rnd.random() < 0.0005:
                quantity = -1
            price = Decimal(50 + int(sku[-4:]) % 200 if sku.startswith("PERF") else 1)
            paid = (
                (price * quantity * Decimal("0.9")).quantize(Decimal("0.01"))
                if isinstance(quantity, int) and quantity > 0
                else ""
            )
            rows.append(
                platform_row(
                    订单编号=f"{88_000_000_000_000 + n}",
                    买家会员名=f"tb_buyer{buyer}",
                    收货人姓名=f"买家{buyer}",
                    联系手机=phone,
                    收货地址=address,
                    商品编码=sku,
                    商品标题=f"商品 {sku}",
                    购买数量=quantity,
                    商品单价=f"{price}.00",
                    实付金额=str(paid),
                    订单状态=state,
                    订单创建时间=ordered.strftime("%Y-%m-%d %H:%M:%S"),
                    付款时间=""
                    if state in ("等待买家付款",)
                    else (ordered + datetime.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S"),
                )
            )
    return rows


def later_rows(rows: list[list], *, seed: int = 20261112) -> list[list]:
    """A later export: the same orders, 10% of them moved on, and 5% new orders."""
    from tests.sales.files.order_import_samples import PLATFORM_HEADERS

    rnd = random.Random(seed)
    state_at = PLATFORM_HEADERS.index("订单状态")
    number_at = PLATFORM_HEADERS.index("订单编号")
    moved: dict[str, str] = {}
    result = []
    for row in rows:
        row = list(row)
        number = row[number_at]
        if number not in moved:
            moved[number] = NEXT_STATE.get(row[state_at], "") if rnd.random() < 0.1 else ""
        if moved[number]:
            row[state_at] = moved[number]
        result.append(row)
    last = max(int(r[number_at]) for r in rows) - 88_000_000_000_000
    return result + order_rows(len(rows) // 20, seed=seed, start=last)


class _Upload:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name

    def chunks(self, size: int = 1024 * 1024):
        with self.path.open("rb") as handle:
            while chunk := handle.read(size):
                yield chunk


def _prepare(actor_name: str):
    from django.core.management import call_command

    from crm.accounts import roles
    from crm.core.regions.loader import ensure_loaded
    from sales.models import Product, Warehouse
    from sales.services.inventory import stock_receive
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0, interactive=False)
    call_command("create_audit_key", stdout=open(os.devnull, "w"))  # noqa: SIM115
    ensure_loaded()
    roles.sync_roles()
    actor = UserFactory(role=roles.SALES_MANAGER, username=actor_name)
    warehouse = Warehouse.objects.create(code="perf", name="性能仓", is_default=True)
    Product.objects.bulk_create(
        Product(sku=f"PERF-{i:04d}", name=f"商品 {i}", list_price=Decimal(50 + i % 200))
        for i in range(PRODUCTS)
    )
    for product in Product.objects.filter(sku__startswith="PERF-"):
        stock_receive(
            actor=None, product=product, warehouse=warehouse, quantity=Decimal(1_000_000), reason="perf"
        )
    return actor


def _import_once(actor, path: Path, label: str) -> dict:
    from crm.core.audit.models import AuditEntry
    from crm.core.jobs.models import Job
    from crm.core.jobs.services import run_job
    from customers.models import Customer
    from sales.models import Order
    from sales.services import order_import

    audit_before = AuditEntry.objects.count()
    orders_before = Order.objects.count()
    customers_before = Customer.objects.count()
    start = time.perf_counter()
    session = order_import.import_session_create(
        actor=actor, uploaded=_Upload(path), template=order_import.BUILTIN_TEMPLATES["platform"]
    )
    inspected = time.perf_counter()
    job = Job.objects.create(kind=order_import.IMPORT_KIND, owner=actor, params={"token": session.token})
    run_job(str(job.pk), order_import.build_order_import)
    done = time.perf_counter()
    job.refresh_from_db()
    rows = session.row_count
    seconds = done - start
    return {
        "run": label,
        "status": job.status,
        "error": job.error,
        "message": job.message,
        "rows": rows,
        "upload_and_inspect_s": round(inspected - start, 2),
        "job_s": round(done - inspected, 2),
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1) if seconds else None,
        "new_orders": Order.objects.count() - orders_before,
        "new_customers": Customer.objects.count() - customers_before,
        "new_audit_entries": AuditEntry.objects.count() - audit_before,
    }


class _Worker:
    """A Celery worker (one process) on the harness's database, keys and broker: the production
    layout, where the import job runs in one worker process and its follow-up tasks in another."""

    def __init__(self, broker: str, log: Path):
        self.broker = broker
        self.log = log
        self.process = None

    def start(self) -> None:
        import redis

        redis.Redis.from_url(self.broker).flushdb()  # no stale tasks
        command = [sys.executable, "-m", "celery", "-A", "crm", "worker", "--concurrency=1"]
        command += ["--loglevel=WARNING", "--without-gossip", "--without-mingle", "--hostname=perf@%h"]
        self.process = subprocess.Popen(
            command, env=os.environ.copy(), stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        from crm.celery import app

        for _ in range(60):
            if app.control.ping(timeout=1):
                return
            if self.process.poll() is not None:
                break
        raise SystemExit(f"the Celery worker did not start: see {self.log}")

    def drain(self) -> float:
        """Wait until the queue is empty and the worker idle; returns the seconds waited."""
        import redis

        from crm.celery import app

        start = time.perf_counter()
        queue = redis.Redis.from_url(self.broker)
        inspect = app.control.inspect(timeout=1)
        while True:
            busy = queue.llen("celery") or any((inspect.active() or {}).values())
            if not busy and not any((inspect.reserved() or {}).values()):
                return time.perf_counter() - start
            time.sleep(0.5)

    def stop(self) -> int:
        """Stop the worker; returns how many errors it logged (failed or retried tasks)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if " ERROR" in line or "Retry in" in line)


def run_order_import_perf(args) -> dict:
    import django

    workdir = Path(tempfile.mkdtemp(prefix="crm-perf-orderimport-"))
    os.environ["AUDIT_SIGNING_KEY_PATH"] = str(workdir / "audit_ed25519.pem")
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker
    django.setup()
    from django.db import connection

    from crm.core.audit.services import verify_chain
    from sales.models import Order
    from tests.sales.files.order_import_samples import PLATFORM_HEADERS, write_xlsx

    if Order._meta.db_table in connection.introspection.table_names() and Order.objects.exists():
        raise SystemExit(f"{connection.settings_dict['NAME']} already holds orders: use a fresh database")
    actor = _prepare(args.import_as)
    start = time.perf_counter()
    rows = order_rows(args.rows)
    path = write_xlsx(workdir / f"orders-{args.rows}.xlsx", PLATFORM_HEADERS, rows)
    generated = time.perf_counter() - start
    print(f"wrote {path.name}: {len(rows):,} rows, {path.stat().st_size / 1e6:.1f} MB in {generated:.1f} s")
    worker = _Worker(args.broker, workdir.parent / f"{workdir.name}-worker.log") if args.broker else None
    try:
        if worker is not None:
            worker.start()

        def run(file: Path, label: str) -> dict:
            result = _import_once(actor, file, label)
            if worker is not None:
                # The follow-up tasks still queued or running when the job finished.
                result["worker_tasks_after_job_s"] = round(worker.drain(), 1)
            return result

        runs = [run(path, "first import")]
        if args.reimport:
            runs.append(run(path, "same file again"))
        if args.later:
            later = write_xlsx(workdir / "orders-later.xlsx", PLATFORM_HEADERS, later_rows(rows))
            runs.append(run(later, "later overlapping export"))
    finally:
        worker_errors = worker.stop() if worker is not None else None
    if worker_errors:
        print(f"the worker logged {worker_errors} errors or retries: see {worker.log}")
    start = time.perf_counter()
    chain = verify_chain()
    verify_seconds = time.perf_counter() - start
    shutil.rmtree(workdir, ignore_errors=True)
    for number, run in enumerate(runs):
        target = TARGET_SECONDS * run["rows"] / TARGET_ROWS if number == 0 else None
        run["target_s"] = round(target, 1) if target else None
        run["meets_target"] = (run["status"] == "succeeded" and run["seconds"] <= target) if target else None
        verdict = "" if target is None else (" ok" if run["meets_target"] else " MISSED")
        print(
            f"{run['run']}: {run['rows']:,} rows in {run['seconds']:.1f} s = {run['rows_per_s']:,.0f} rows/s "
            f"(upload and check {run['upload_and_inspect_s']} s, job {run['job_s']} s); "
            f"{run['new_orders']:,} new orders, {run['new_customers']:,} new customers, "
            f"{run['new_audit_entries']:,} audit entries; {run['message']}{verdict}"
        )
    print(f"audit chain: {chain.summary()} ({verify_seconds:.1f} s)")
    for run in runs:
        if "worker_tasks_after_job_s" in run:
            after = run["worker_tasks_after_job_s"]
            print(f"{run['run']}: the worker finished its queued tasks {after} s after the job")
    return {
        "mode": "order-import",
        "database": connection.vendor,
        "tasks": "Celery worker" if args.broker else "inline",
        "worker_errors": worker_errors,
        "rows": args.rows,
        "generate_s": round(generated, 1),
        "audit_chain_ok": chain.ok,
        "audit_entries": chain.entries,
        "verify_s": round(verify_seconds, 1),
        "results": runs,
    }
