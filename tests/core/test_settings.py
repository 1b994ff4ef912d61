"""Settings from the environment: production sample passes check --deploy, secrets fail fast,
MySQL connection options (R7.2.1, R7.2.4, R6.2.6 portability).

Each test runs Django in a subprocess with a controlled environment, because settings are read
once at import time.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SAMPLE = ROOT / "deploy" / "env.production.example"
DEV_KEYS = {
    "SECRET_KEY": "x" * 10 + "settings-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "FIELD_ENCRYPTION_KEYS": "1:dGVzdC1maWVsZC1rZXktdGhpcnR5LXR3by1ieXRlcyE=",
    "BLIND_INDEX_KEY": "dGVzdC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMtbG9uZw==",
}
HAS_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None
# Reads settings without django.setup(): importing models may load the database driver.
PRINT_DB = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default'], 'cache': s.CACHES['default']}, default=str))"
)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def run_django(args, **env_vars):
    """Run ``python <args>`` in the project root with only PATH/HOME and ``env_vars`` set.

    Variables a developer's .env might add are pinned to empty unless given, so the result does
    not depend on the machine.
    """
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DATABASE_URL": "sqlite:///:memory:",
        "CELERY_BROKER_URL": "",
        "CACHE_URL": "locmemcache://settings-test",
        "DEBUG": "false",
        **dict.fromkeys(DEV_KEYS, ""),
    }
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def production_env(**overrides):
    values = read_env_file(PRODUCTION_SAMPLE)
    if not HAS_MYSQLCLIENT:  # the security checks do not depend on the database driver
        values["DATABASE_URL"] = "sqlite:///:memory:"
    values.update(overrides)
    return values


def test_production_sample_passes_check_deploy():
    """R7.2.1: the production sample is clean under `manage.py check --deploy` (no warnings)."""
    result = run_django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SESSION_COOKIE_SECURE": "false"}, "security.W012"),
        ({"SECRET_KEY": "short-key"}, "security.W009"),
    ],
)
def test_check_deploy_catches_weakened_sample(override, warning):
    """Negative: weakening one setting of the sample makes check --deploy warn."""
    result = run_django(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **production_env(**override)
    )
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_production_sample_documents_only_known_variables():
    """Every variable of the production sample is documented in .env.example."""
    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    for key in read_env_file(PRODUCTION_SAMPLE):
        assert f"{key}=" in documented, key


@pytest.mark.parametrize("missing", sorted(DEV_KEYS))
def test_secrets_required_when_debug_off(missing):
    """R7.1.1: with DEBUG off, the CRM refuses to start without each secret (no default)."""
    values = {**DEV_KEYS, missing: ""}
    result = run_django(["-c", "import django; django.setup()"], DEBUG="false", **values)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"Set the {missing} environment variable" in result.stderr


def test_all_secrets_given_starts_and_debug_has_dev_fallbacks():
    assert run_django(["-c", "import django; django.setup()"], DEBUG="false", **DEV_KEYS).returncode == 0
    result = run_django(["-c", "import django; django.setup()"], DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_mysql_url_gets_utf8mb4_strict_mode_and_health_checks():
    """R6.2.6: a MySQL DATABASE_URL gets utf8mb4, strict SQL mode, READ COMMITTED, health checks."""
    result = run_django(
        ["-c", PRINT_DB],
        DEBUG="true",
        DATABASE_URL="mysql://crm:secret@db.internal:3306/crm",
        CONN_MAX_AGE="30",
    )
    assert result.returncode == 0, result.stderr
    db = json.loads(result.stdout)["db"]
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert (db["NAME"], db["HOST"], db["PORT"], db["USER"]) == ("crm", "db.internal", 3306, "crm")
    assert db["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in db["OPTIONS"]["init_command"]
    assert "optimizer_switch='index_merge_intersection=off'" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["isolation_level"] == "read committed"
    assert db["CONN_HEALTH_CHECKS"] is True
    assert db["CONN_MAX_AGE"] == 30
    assert db["TEST"]["CHARSET"] == "utf8mb4"


@pytest.mark.django_db
def test_mysql_sessions_run_with_the_init_command():
    """The filtered customer list relies on it: with index merge intersection on, MariaDB read
    110,000 rows of a rep's customers in one province and sorted them for a page of 25."""
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("MariaDB/MySQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.optimizer_switch, @@SESSION.sql_mode")
        switches, sql_mode = cursor.fetchone()
    assert "index_merge_intersection=off" in switches
    assert "STRICT_TRANS_TABLES" in sql_mode


def test_sqlite_default_has_no_mysql_options():
    result = run_django(
        ["-c", PRINT_DB], DEBUG="true", DATABASE_URL="sqlite:////tmp/crm-settings-test.sqlite3"
    )
    db = json.loads(result.stdout)["db"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert "charset" not in db["OPTIONS"]
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_redis_cache_url_uses_django_redis():
    """The CACHE_URL example of .env.example maps to an installed backend."""
    result = run_django(["-c", PRINT_DB], DEBUG="true", CACHE_URL="redis://127.0.0.1:6379/1")
    cache = json.loads(result.stdout)["cache"]
    assert cache == {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/1"}
    assert importlib.util.find_spec("django_redis") is not None


def settings_variables() -> set[str]:
    source = (ROOT / "crm" / "settings.py").read_text(encoding="utf-8")
    names = set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    names |= set(re.findall(r"""_secret\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    return names


def test_every_setting_variable_is_documented():
    """R6.1.1: .env.example and README's configuration table list every variable settings read."""
    names = settings_variables()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "FIELD_ENCRYPTION_KEYS", "LOG_LEVEL"} <= names
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(n for n in names if not re.search(rf"^#? ?{n}=", example, re.MULTILINE)) == []
    assert sorted(n for n in names if f"| `{n}` |" not in readme) == []


def test_env_example_as_dotenv_starts_in_debug():
    """.env.example parses; its secrets are blank, so it needs DEBUG=true or real keys."""
    values = read_env_file(ROOT / ".env.example")
    values.pop("DEBUG")
    result = run_django(["-c", "import django; django.setup()"], DEBUG="true", **values)
    assert result.returncode == 0, result.stderr
    result = run_django(["-c", "import django; django.setup()"], DEBUG="false", **values)
    assert "Set the SECRET_KEY environment variable" in result.stderr
