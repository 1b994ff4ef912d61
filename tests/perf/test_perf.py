"""Performance budgets (R8.2 non-functional tests). Marked `perf`: excluded from the normal suite.

Run with: .venv/bin/pytest -m perf tests/perf
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.perf
def test_key_pages_meet_p50_budget(tmp_path):
    """Login and home pages answer with a server-time p50 within their targets (15 ms)."""
    cmd = [sys.executable, "-m", "tests.perf.run", "--requests", "100", "--output", str(tmp_path)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    report = json.loads((tmp_path / "pages-latest.json").read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["page"] for r in report["results"]} >= {"login", "home"}
    assert all(r["meets_target"] is not False for r in report["results"])
