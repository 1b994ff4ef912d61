"""Settings for the test suite: the project's settings with test keys and fast hashing.

DATABASE_URL and CELERY_BROKER_URL still come from the environment, so the same suite runs on
SQLite (default) and on MariaDB (.ci/run).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghijklmnop")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "1:dGVzdC1maWVsZC1rZXktdGhpcnR5LXR3by1ieXRlcyE=")
os.environ.setdefault("BLIND_INDEX_KEY", "dGVzdC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMtbG9uZw==")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from crm.settings import *  # noqa: F403
from crm.settings import BASE_DIR, INSTALLED_APPS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = BASE_DIR / "reports" / "media"
AUDIT_SIGNING_KEY_PATH = BASE_DIR / "reports" / "keys" / "audit_ed25519.pem"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests run tasks inline even when the environment names a broker; the broker tests opt out.
CELERY_TASK_ALWAYS_EAGER = True
WHITENOISE_AUTOREFRESH = True
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
