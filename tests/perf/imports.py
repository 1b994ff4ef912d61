"""``python -m tests.perf.run --mode import``: time of importing a large customer .xlsx (R5.1.3, R8.2).

Target (issue 3): a 100,000-row .xlsx imported in under 2 minutes.

The run migrates and seeds the database (``--db-url``, default a temporary SQLite file), writes a
realistic file of ``--rows`` customers with Chinese column titles (names, mobiles and landlines,
e-mails, WeChat IDs, platform accounts, levels, sources, regions as province / city / district names,
streets, postcodes, tags, notes, a few owners named by username, a few rows with no phone, e-mail or
account, and a few invalid rows), uploads it with ``import_session_create`` and imports it through
``build_customers_import`` run by ``crm.core.jobs.services.run_job``: exactly what the Celery task
of a large import does. It reports the rows per second of that job and, with ``--reimport``, imports
the same file again (policy "update") to show that a second import creates, changes and audits
nothing. The audit chain is verified at the end.

The database must hold no customer yet (use a fresh one: every run encrypts with new keys). For
MariaDB create one first, never use crm_perf::

    mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS crm_perf_import;
        CREATE DATABASE crm_perf_import CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    python -m tests.perf.run --mode import --db-url mysql://root@127.0.0.1:3306/crm_perf_import
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_SECONDS = 120.0
TARGET_ROWS = 100_000

HEADERS = [
    "姓名",
    "类型",
    "性别",
    "生日",
    "会员等级",
    "来源",
    "手机",
    "电话",
    "邮箱",
    "微信号",
    "平台",
    "买家账号",
    "省份",
    "城市",
    "区县",
    "详细地址",
    "邮编",
    "标签",
    "备注",
    "负责人",
]
LEVELS = ("普通", "普通", "普通", "普通", "普通", "普通", "普通", "银卡", "银卡", "金卡", "钻石")
SOURCES = ("天猫", "天猫", "淘宝", "淘宝", "京东", "抖音", "拼多多", "微信", "官网", "线下", "转介绍")
PLATFORM_OF_SOURCE = {"天猫": "天猫", "淘宝": "淘宝", "京东": "京东", "抖音": "抖音", "拼多多": "拼多多"}
ACCOUNT_PREFIX = {"天猫": "tb", "淘宝": "tb", "京东": "jd", "抖音": "dy", "拼多多": "pdd"}
TAGS = ("复购客户", "价格敏感", "大客户", "VIP", "直播间粉丝", "老客户", "双十一")
STREETS = ("文三路", "人民路", "解放路", "中山路", "建设路", "和平路", "滨江大道", "世纪大道", "长江路")
NOTES = ("618 活动新客", "要求开发票", "偏好顺丰", "老客户介绍", "直播间下单")
# Sequence numbers far above what the scale seeder uses, so the mobiles never collide with it.
NUMBER_BASE = 2_000_000_000


def _districts() -> list[tuple[str, str, str, str]]:
    """(province, city, district, postcode-ish prefix) names of leaf regions, weighted to the coast."""
    from crm.core.regions import selectors as regions
    from customers.scale import PROVINCE_WEIGHTS

    leaves = []
    for province in regions.provinces():
        weight = PROVINCE_WEIGHTS.get(province.code, 1)
        for city in regions.children(province.code):
            districts = regions.children(city.code) or [None]
            for district in districts[:6]:
                row = (
                    province.name_zh,
                    city.name_zh,
                    district.name_zh if district else "",
                    province.code[:2],
                )
                leaves.extend([row] * weight)
    return leaves


def import_rows(count: int, *, seed: int = 20261124) -> list[list]:
    """``count`` realistic rows in the order of ``HEADERS``.

    About 92% have a mobile, 25% a landline, 30% an e-mail, 55% a platform account; 1.5% have none
    of them (matched on a re-import by their fingerprint only); 0.2% are invalid (a bad phone).
    """
    from customers.scale import (
        CITY_WORDS,
        COMPANY_KINDS,
        COMPANY_WORDS,
        DOUBLE_SURNAMES,
        EMAIL_DOMAINS,
        GIVEN,
        SURNAME_WEIGHTS,
        SURNAMES,
        landline_for,
        mobile_for,
    )

    rnd = random.Random(seed)
    leaves = _districts()
    users = ("", "") * 20 + ("sales1", "sales2", "salesmgr")
    today = date.today()
    rows = []
    for i in range(count):
        n = NUMBER_BASE + i
        company = rnd.random() < 0.08
        if company:
            name = rnd.choice(CITY_WORDS) + rnd.choice(COMPANY_WORDS) + rnd.choice(COMPANY_KINDS)
        else:
            surname = (
                rnd.choice(DOUBLE_SURNAMES)
                if rnd.random() < 0.01
                else rnd.choices(SURNAMES, SURNAME_WEIGHTS)[0]
            )
            name = surname + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2, 2))))
        source = rnd.choice(SOURCES)
        bare = rnd.random() < 0.015  # no phone, e-mail or account
        mobile = "" if bare or rnd.random() < 0.08 else mobile_for(n)
        landline = "" if bare or rnd.random() > 0.25 else landline_for(n)
        if not (bare or mobile or landline):
            mobile = mobile_for(n)
        if rnd.random() < 0.002:
            mobile = "1380013" + str(i % 10)  # invalid: too short
        email = "" if bare or rnd.random() > 0.3 else f"u{n}@{rnd.choice(EMAIL_DOMAINS)}"
        platform = PLATFORM_OF_SOURCE.get(source, "")
        account = f"{ACCOUNT_PREFIX[platform]}_{n:x}" if platform and not bare and rnd.random() < 0.85 else ""
        province, city, district, prefix = rnd.choice(leaves)
        has_address = rnd.random() < 0.9
        birthday = today - timedelta(days=rnd.randint(18 * 365, 70 * 365)) if rnd.random() < 0.5 else None
        rows.append(
            [
                name,
                "企业" if company else "个人",
                "" if company else rnd.choice(("男", "女", "男", "女", "")),
                None if company else birthday,
                rnd.choice(LEVELS),
                source,
                mobile,
                landline,
                email,
                f"wx_{n:x}" if not bare and rnd.random() < 0.2 else "",
                platform if account else "",
                account,
                province if has_address else "",
                city if has_address else "",
                district if has_address else "",
                f"{rnd.choice(STREETS)} {rnd.randint(1, 999)} 号" if has_address else "",
                f"{prefix}{rnd.randint(0, 9999):04d}" if has_address and rnd.random() < 0.6 else "",
                "、".join(rnd.sample(TAGS, rnd.randint(1, 2))) if rnd.random() < 0.2 else "",
                rnd.choice(NOTES) if rnd.random() < 0.1 else "",
                rnd.choice(users),
            ]
        )
    return rows


def write_import_file(path: Path, count: int, *, inline_strings: bool = False) -> Path:
    """Write the rows to an .xlsx as Excel or WPS save it: a shared-string table, a <dimension>,
    birthdays as date cells. With ``inline_strings``, as openpyxl's write-only mode and streaming
    writers (Apache POI's SXSSF) do instead: strings inline in each cell, no dimension, which
    openpyxl reads several times slower."""
    rows = import_rows(count)
    if inline_strings:
        from tests.customers.files.generate import write_xlsx

        return write_xlsx(path, HEADERS, rows)
    return _write_excel_like(path, [HEADERS, *rows])


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _write_excel_like(path: Path, rows: list[list]) -> Path:
    import zipfile
    from xml.sax.saxutils import escape

    strings: dict[str, int] = {}
    epoch = date(1899, 12, 30)
    letters = [_column_letter(i) for i in range(max(len(r) for r in rows))]
    body = []
    for number, row in enumerate(rows, start=1):
        cells = []
        for letter, value in zip(letters, row, strict=False):
            ref = f"{letter}{number}"
            if value is None or value == "":
                continue
            if isinstance(value, date):
                cells.append(f'<c r="{ref}" s="1"><v>{(value - epoch).days}</v></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                index = strings.setdefault(str(value), len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
        body.append(f'<row r="{number}">{"".join(cells)}</row>')
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{main}">'
        f'<dimension ref="A1:{letters[-1]}{len(rows)}"/><sheetData>{"".join(body)}</sheetData></worksheet>'
    )
    shared = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="{main}" count="{len(strings)}" '
        f'uniqueCount="{len(strings)}">' + "".join(f"<si><t>{escape(t)}</t></si>" for t in strings) + "</sst>"
    )
    styles = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{main}">'
        '<fonts count="1"><font><sz val="11"/><name val="等线"/></font></fonts>'
        '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{main}" '
            f'xmlns:r="{rel}"><sheets><sheet name="客户" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            f'<Relationship Id="rId3" Type="{rel}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": shared,
        "xl/styles.xml": styles,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


class _Upload:
    """The smallest stand-in for an uploaded file: a name and ``chunks()``."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name

    def chunks(self, size: int = 1024 * 1024):
        with self.path.open("rb") as handle:
            while chunk := handle.read(size):
                yield chunk


def _import_once(actor, path: Path, policy: str) -> dict:
    from crm.core.audit.models import AuditEntry
    from crm.core.jobs.models import Job
    from crm.core.jobs.services import run_job
    from customers.models import Customer
    from customers.services import imports

    audit_before = AuditEntry.objects.count()
    customers_before = Customer.objects.count()
    load_before = os.getloadavg()[0]
    cpu = time.process_time()
    start = time.perf_counter()
    session = imports.import_session_create(actor=actor, uploaded=_Upload(path), policy=policy)
    inspected = time.perf_counter()
    job = Job.objects.create(kind=imports.IMPORT_KIND, owner=actor, params={"token": session.token})
    run_job(str(job.pk), imports.build_customers_import)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    job.refresh_from_db()
    rows = session.row_count
    seconds = done - start
    return {
        "policy": policy,
        "status": job.status,
        "error": job.error,
        "message": job.message,
        "rows": rows,
        "upload_and_inspect_s": round(inspected - start, 2),
        "job_s": round(done - inspected, 2),
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1) if seconds else None,
        # CPU of this process (with SQLite, the database's work too): what a busy machine changes least.
        "cpu_s": round(cpu, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "new_customers": Customer.objects.count() - customers_before,
        "new_audit_entries": AuditEntry.objects.count() - audit_before,
    }


def run_import_perf(args) -> dict:
    import django

    workdir = Path(tempfile.mkdtemp(prefix="crm-perf-import-"))
    # Checkpoints are signed as in production (AUDIT_CHECKPOINT_EVERY entries), with a throw-away key.
    os.environ["AUDIT_SIGNING_KEY_PATH"] = str(workdir / "audit_ed25519.pem")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from crm.accounts.models import User
    from crm.core.audit.services import verify_chain
    from customers.models import Customer

    from .run import prepare_database

    table = Customer._meta.db_table
    if table in connection.introspection.table_names() and Customer.objects.exists():
        raise SystemExit(f"{connection.settings_dict['NAME']} already holds customers: use a fresh database")
    prepare_database(scale=1)
    call_command("create_audit_key", stdout=open(os.devnull, "w"))  # noqa: SIM115
    demo_customers = Customer.objects.count()
    actor = User.objects.get(username=args.import_as)
    start = time.perf_counter()
    inline = getattr(args, "inline_strings", False)
    path = write_import_file(workdir / f"customers-{args.rows}.xlsx", args.rows, inline_strings=inline)
    generated = time.perf_counter() - start
    file_bytes = path.stat().st_size
    print(f"wrote {path.name}: {args.rows:,} rows, {file_bytes / 1e6:.1f} MB in {generated:.1f} s")
    runs = [_import_once(actor, path, "skip")]
    if args.reimport:
        runs.append(_import_once(actor, path, "update"))
    start = time.perf_counter()
    chain = verify_chain()
    verify_seconds = time.perf_counter() - start
    shutil.rmtree(workdir, ignore_errors=True)
    results = []
    for number, run in enumerate(runs, start=1):
        first = number == 1
        target = TARGET_SECONDS * run["rows"] / TARGET_ROWS
        run.update(
            {
                "run": "first import" if first else "same file again",
                "target_s": round(target, 1) if first else None,
                "meets_target": (run["status"] == "succeeded" and run["seconds"] <= target)
                if first
                else None,
            }
        )
        results.append(run)
        verdict = "" if not first else (" ok" if run["meets_target"] else " MISSED")
        print(
            f"{run['run']} ({run['policy']}): {run['rows']:,} rows in {run['seconds']:.1f} s "
            f"= {run['rows_per_s']:,.0f} rows/s (upload and check {run['upload_and_inspect_s']} s, "
            f"job {run['job_s']} s; CPU {run['cpu_s']} s; load {run['load_average']}; "
            f"peak RSS {run['peak_rss_mb']} MB); "
            f"{run['new_customers']:,} new customers, "
            f"{run['new_audit_entries']:,} new audit entries; {run['message']}{verdict}"
        )
    print(f"audit chain: {chain.summary()} ({verify_seconds:.1f} s)")
    return {
        "mode": "import",
        "database": connection.vendor,
        "rows": args.rows,
        "file_bytes": file_bytes,
        "file_form": "inline strings, no dimension" if inline else "shared strings and dimension (as Excel)",
        "demo_customers": demo_customers,
        "import_as": args.import_as,
        "generate_s": round(generated, 1),
        "audit_chain_ok": chain.ok,
        "audit_entries": chain.entries,
        "verify_s": round(verify_seconds, 1),
        "results": results,
    }
