"""``python -m tests.perf.run --mode wsgi``: customer pages served by a real WSGI server (R8.2, issue 3).

Starts waitress (or gunicorn) in a subprocess on 127.0.0.1:<free port> against ``--db-url`` (a seeded
database such as crm_perf) with DEBUG off and production-like settings, signs in through the real
login form (GET for the CSRF cookie and token, POST the form, keep the session cookie) as each
``--as`` user, then times ``--requests`` GETs of each page over one keep-alive connection and
reports p50/p95/max (client-side wall time: network stack, server, Django, database).

The database is used as it is (never migrated or seeded here). The encryption and blind-index keys
must be those the data was written with: by default the ones ``DEBUG=1 manage.py`` uses (the .env
file or the development defaults), or FIELD_ENCRYPTION_KEYS / BLIND_INDEX_KEY from the environment.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PASSWORD = "Demo-2026-crm"  # the public demo password of seed_demo
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class WsgiPage:
    name: str
    path: str
    kind: str  # "list", "search", "detail", "other": decides the p95 target
    user: str | None


TARGET_P95_MS = {"list": 200.0, "search": 200.0, "detail": 150.0}
#: One-character name searches that match tens of thousands of the seeded customers (the two most
#: common surnames): the broadest searches the list serves.
BROAD_NAME_TERMS = ("张", "王")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def debug_keys() -> dict[str, str]:
    """The keys ``DEBUG=1 manage.py`` encrypts with (from .env or the development defaults)."""
    code = (
        "import os; os.environ['DEBUG'] = '1'; os.environ['DJANGO_SETTINGS_MODULE'] = 'crm.settings';"
        "from django.conf import settings as s; import json;"
        "print(json.dumps([','.join(s.FIELD_ENCRYPTION_KEYS), s.BLIND_INDEX_KEY]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    field_keys, blind_key = json.loads(out.strip().splitlines()[-1])
    return {"FIELD_ENCRYPTION_KEYS": field_keys, "BLIND_INDEX_KEY": blind_key}


def server_environment(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    if not (env.get("FIELD_ENCRYPTION_KEYS") and env.get("BLIND_INDEX_KEY")):
        env.update(debug_keys())
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "crm.settings",
            "DATABASE_URL": db_url,
            "DEBUG": "false",
            "SECRET_KEY": env.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
            "CELERY_BROKER_URL": "",
            "LOG_LEVEL": "WARNING",
            "AXES_ENABLED": "true",
        }
    )
    env.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="crm-perf-media-"))
    env.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="crm-perf-static-"))
    return env


def start_server(*, server: str, port: int, env: dict[str, str], threads: int, workers: int):
    bin_dir = Path(sys.executable).parent
    if server == "gunicorn":
        cmd = [
            str(bin_dir / "gunicorn"),
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--log-level=warning",
            "crm.wsgi:application",
        ]
    else:
        cmd = [
            str(bin_dir / "waitress-serve"),
            f"--listen=127.0.0.1:{port}",
            f"--threads={threads}",
            "crm.wsgi:application",
        ]
    log = tempfile.NamedTemporaryFile(prefix=f"crm-perf-{server}-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, Path(log.name)


def stop_server(process) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class Browser:
    """One keep-alive HTTP connection with a cookie jar: just enough of a browser for the timings."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.setdefault("Accept-Language", "zh-hans")
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for key, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value
        return response.status, response.headers, data

    def login(self, username: str, password: str) -> None:
        status, _, body = self.request("GET", "/accounts/login/")
        match = CSRF_RE.search(body.decode("utf-8", "replace"))
        if status != 200 or not match:
            raise SystemExit(f"login page: status {status}, no CSRF token")
        form = urlencode({"csrfmiddlewaretoken": match.group(1), "username": username, "password": password})
        status, headers, _ = self.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://127.0.0.1:{self.port}/accounts/login/",
            },
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"signing in as {username} failed (status {status})")
        location = headers.get("Location", "")
        if "two-factor" in location:
            raise SystemExit(f"{username} must pass a second factor: use a user without 2FA")

    def close(self) -> None:
        self.conn.close()


def wait_until_up(port: int, process, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


def sample_data(db_url: str, env: dict[str, str], users: list[str]) -> dict:
    """Ids and values to put in the URLs: the gold level, and per user a visible customer and its phone."""
    code = f"""
import json, django
django.setup()
from crm.accounts.models import User
from crm.core.visibility import visible_to
from customers.models import Customer, CustomerLevel, CustomerPhone
gold = CustomerLevel.objects.filter(code="gold").values_list("pk", flat=True).first()
out = {{"gold": gold, "users": {{}}}}
for username in {users!r}:
    user = User.objects.get(username=username)
    alive = Customer.objects.filter(deleted_at__isnull=True)
    customer = visible_to(user, alive).order_by("-created_at").first()
    phone = None
    if customer is not None:
        p = CustomerPhone.objects.filter(customer=customer, is_primary=True).first()
        phone = p.number if p else None
    out["users"][username] = {{"customer": customer.pk if customer else None, "phone": phone}}
print(json.dumps(out))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"could not read sample data from {db_url.split('@')[-1]}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def customer_pages(user: str, sample: dict, *, name_term: str, last4: str, province: str) -> list[WsgiPage]:
    mine = sample["users"].get(user) or {}
    pages = [
        WsgiPage("login page (anonymous)", "/accounts/login/", "other", None),
        WsgiPage("home", "/", "other", user),
        WsgiPage("customer list", "/customers/", "list", user),
    ]
    filters = {"province": province}
    if sample.get("gold"):
        filters = {"level": sample["gold"], **filters}
    pages.append(WsgiPage("filtered list", "/customers/?" + urlencode(filters), "list", user))
    pages.append(WsgiPage(f"search name {name_term}", "/customers/?q=" + quote(name_term), "search", user))
    for term in BROAD_NAME_TERMS:
        pages.append(WsgiPage(f"search one character {term}", "/customers/?q=" + quote(term), "search", user))
    broad = BROAD_NAME_TERMS[0]
    pages.append(
        WsgiPage(
            f"search {broad} + filters", "/customers/?" + urlencode({"q": broad, **filters}), "search", user
        )
    )
    pages.append(
        WsgiPage(
            f"search {broad} sorted by name",
            "/customers/?" + urlencode({"q": broad, "sort": "name"}),
            "search",
            user,
        )
    )
    if mine.get("phone"):
        pages.append(WsgiPage("search full phone", "/customers/?q=" + quote(mine["phone"]), "search", user))
    pages.append(WsgiPage(f"search last four {last4}", f"/customers/?q={last4}", "search", user))
    if mine.get("customer"):
        pages.append(WsgiPage("customer detail", f"/customers/{mine['customer']}/", "detail", user))
    return pages


def time_page(browser: Browser | None, port: int, page: WsgiPage, *, requests: int, warmup: int) -> dict:
    client = browser or Browser(port)
    status, _, body = client.request("GET", page.path)
    if status != 200:
        return {"page": page.name, "user": page.user, "url": page.path, "status": status, "skipped": True}
    for _ in range(max(0, warmup - 1)):
        client.request("GET", page.path)
    timings, statuses = [], set()
    for _ in range(requests):
        start = time.perf_counter()
        status, _, body = client.request("GET", page.path)
        timings.append((time.perf_counter() - start) * 1000)
        statuses.add(status)
    target = TARGET_P95_MS.get(page.kind)
    p95 = percentile(timings, 95)
    return {
        "page": page.name,
        "user": page.user,
        "url": page.path,
        "status": sorted(statuses),
        "requests": requests,
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(max(timings), 1),
        "bytes": len(body),
        "target_p95_ms": target,
        "meets_target": None if target is None else (p95 <= target and statuses == {200}),
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def print_results(results: list[dict]) -> None:
    header = f"{'user':<9} {'page':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target"
    print(header)
    print("-" * len(header))
    for r in results:
        if r.get("skipped"):
            print(
                f"{r['user'] or '-':<9} {r['page']:<26} {'':>8} {'':>8} {'':>8}  HTTP {r['status']}: skipped"
            )
            continue
        target = "" if r["target_p95_ms"] is None else f"p95 <= {r['target_p95_ms']:.0f} ms: "
        verdict = "" if r["meets_target"] is None else ("ok" if r["meets_target"] else "MISSED")
        print(
            f"{r['user'] or '-':<9} {r['page']:<26} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['max_ms']:>8.1f}  {target}{verdict}"
        )


def run_wsgi(args) -> dict:
    if not args.db_url:
        raise SystemExit("--mode wsgi needs --db-url (a migrated, seeded database such as crm_perf)")
    env = server_environment(args.db_url)
    sample = sample_data(args.db_url, env, args.as_users)
    port = free_port()
    process, log = start_server(
        server=args.server, port=port, env=env, threads=args.threads, workers=args.workers
    )
    results: list[dict] = []
    try:
        wait_until_up(port, process, log)
        for username in args.as_users:
            browser = Browser(port)
            browser.login(username, args.password)
            for page in customer_pages(
                username, sample, name_term=args.name_term, last4=args.last4, province=args.province
            ):
                if page.user is None and username != args.as_users[0]:
                    continue  # the anonymous page once is enough
                client = browser if page.user else None
                results.append(time_page(client, port, page, requests=args.requests, warmup=args.warmup))
            browser.close()
    finally:
        stop_server(process)
    print_results(results)
    return {
        "mode": "wsgi",
        "server": args.server,
        "threads": args.threads if args.server == "waitress" else None,
        "workers": args.workers if args.server == "gunicorn" else None,
        "debug": False,
        "sample": sample,
        "results": results,
    }
