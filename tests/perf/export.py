"""``python -m tests.perf.run --mode export-memory``: peak memory of exporting every customer (R8.2).

Runs the worker side of the customers export (``customers.services.exports.build_customers_export``
through ``crm.core.jobs.services.run_job``, exactly as the Celery task does) in a fresh subprocess
against ``--db-url``, as ``--export-as`` (default admin: every customer), and reports the process's
peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) next to its resident memory
just before the export started, the row count, the file size and the time. Target: peak < 300 MB.
The job's file goes to a temporary MEDIA_ROOT that is removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

from .wsgi import ROOT, server_environment

TARGET_PEAK_MB = 300

CHILD = """
import json, resource, sys, time
import django
django.setup()
from crm.accounts.models import User
from crm.core.jobs.models import Job
from crm.core.jobs.services import run_job
from customers.services import exports

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

actor = User.objects.get(username=sys.argv[1])
job = Job.objects.create(kind=exports.EXPORT_KIND, owner=actor, params={"filters": {}, "columns": None})
before = rss_mb()
start = time.perf_counter()
run_job(str(job.pk), exports.build_customers_export)
seconds = time.perf_counter() - start
job.refresh_from_db()
size = job.result_file.size if job.result_file else 0
print(json.dumps({
    "status": job.status, "rows": job.processed, "error": job.error, "file_bytes": size,
    "seconds": round(seconds, 1), "rss_before_mb": round(before, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def run_export_memory(args) -> dict:
    if not args.db_url:
        raise SystemExit("--mode export-memory needs --db-url (a seeded database such as crm_perf)")
    env = server_environment(args.db_url)
    media = tempfile.mkdtemp(prefix="crm-perf-export-")
    env["MEDIA_ROOT"] = media
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.export_as],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)
    if out.returncode:
        raise SystemExit(f"the export failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update({"user": args.export_as, "target_peak_mb": TARGET_PEAK_MB, "meets_target": None})
    result["meets_target"] = result["status"] == "succeeded" and result["peak_rss_mb"] < TARGET_PEAK_MB
    print(
        f"export as {args.export_as}: {result['rows']:,} rows, {result['file_bytes'] / 1e6:,.1f} MB file, "
        f"{result['seconds']:,.1f} s, RSS before {result['rss_before_mb']} MB, "
        f"peak {result['peak_rss_mb']} MB (target < {TARGET_PEAK_MB} MB): "
        f"{'ok' if result['meets_target'] else 'MISSED'} [{result['status']}]"
    )
    return {"mode": "export-memory", "results": [result]}
