"""Settings for the CRM, read only from the environment (and an optional .env file).

Every variable is documented in `.env.example`. With nothing set and DEBUG on, the CRM runs
embedded: SQLite, local-memory cache, Celery tasks inline. Production must set the secrets
(SECRET_KEY, FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY): there is no default for them.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Development-only fallbacks: used only when DEBUG is on and the variable is unset.
_DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
_DEV_FIELD_KEY = "1:ZGV2LW9ubHktZmllbGQta2V5LTMyLWJ5dGVzLWxvbmc="  # 32 bytes, base64
_DEV_BLIND_INDEX_KEY = "ZGV2LW9ubHktYmxpbmQtaW5kZXgta2V5LTMyYnl0ZXM="


def _secret(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"Set the {name} environment variable (see .env.example).")


SECRET_KEY = _secret("SECRET_KEY", _DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # third party
    "django_filters",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    # platform
    "crm.accounts",
    "crm.core",
    "crm.core.regions",
    "crm.core.audit",
    "crm.core.jobs",
    "crm.core.notifications",
    "crm.api",
    # business apps
    "customers",
    "sales",
    "marketing",
    "service",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "crm.core.middleware.RequestContextMiddleware",
    "crm.core.middleware.UserPreferencesMiddleware",
    "crm.accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
ADMIN_URL = env.str("ADMIN_URL", default="admin/")
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.core.context_processors.shell",
                "crm.core.notifications.context_processors.notifications",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] in ("django.db.backends.mysql",):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # index_merge_intersection off: for "my customers in Zhejiang, newest first" it
            # intersected the owner and province indexes (110,000 rows, then a sort: 660 ms on
            # 1,000,000 customers) instead of walking (owner, created_at) for one page (2 ms).
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
            "ERROR_FOR_DIVISION_BY_ZERO', innodb_strict_mode=1, "
            "optimizer_switch='index_merge_intersection=off'",
            "isolation_level": "read committed",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    # MySQL/MariaDB cannot enforce conditional unique constraints (e.g. one default address per
    # customer); the services keep those rules inside their transactions, on every database.
    SILENCED_SYSTEM_CHECKS = ["models.W036"]
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache and sessions ---------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://crm")}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Auth -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "crm.accounts.validators.CharacterClassValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

# Lockout after repeated failures (django-axes)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)

# Two-factor authentication (django-otp, TOTP)
REQUIRE_2FA_FOR_ADMINS = env.bool("REQUIRE_2FA_FOR_ADMINS", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="CRM")

# Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="CNY")

# Static and media -------------------------------------------------------------------------------
STATIC_URL = env.str("STATIC_URL", default="/static/")
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_STORAGE",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Sensitive fields ------------------------------------------------------------------------------
# FIELD_ENCRYPTION_KEYS: comma-separated "version:base64key" entries; the first is used to
# encrypt, all are accepted to decrypt (so a rotation can run online).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or (
    [_secret("FIELD_ENCRYPTION_KEYS", _DEV_FIELD_KEY)]
)
BLIND_INDEX_KEY = _secret("BLIND_INDEX_KEY", _DEV_BLIND_INDEX_KEY)

# Audit ledger signing key (Ed25519, PEM). Created by `manage.py create_audit_key`.
AUDIT_SIGNING_KEY_PATH = env.path("AUDIT_SIGNING_KEY_PATH", default=BASE_DIR / "var" / "audit_ed25519.pem")
AUDIT_CHECKPOINT_EVERY = env.int("AUDIT_CHECKPOINT_EVERY", default=1000)
# Fingerprints of retired signing keys whose old checkpoints are still trusted.
AUDIT_TRUSTED_KEY_IDS = env.list("AUDIT_TRUSTED_KEY_IDS", default=[])

# Jobs and links ------------------------------------------------------------------------------
JOBS_RETENTION_DAYS = env.int("JOBS_RETENTION_DAYS", default=30)
# Exports up to this many rows download at once; larger ones run as a background job.
EXPORT_INLINE_LIMIT = env.int("EXPORT_INLINE_LIMIT", default=5000)
# Absolute base URL for links in emails, e.g. https://crm.example.com (no trailing slash).
SITE_URL = env.str("SITE_URL", default="")

# Customer analysis (RFM, lifetime value, churn risk; sales.services.analysis) ------------------
# A repeat customer is at churn risk when the days since the last order exceed this many times
# their average days between orders, and at least SALES_ANALYSIS_CHURN_MIN_DAYS.
SALES_ANALYSIS_CHURN_FACTOR = env.float("SALES_ANALYSIS_CHURN_FACTOR", default=2.0)
SALES_ANALYSIS_CHURN_MIN_DAYS = env.int("SALES_ANALYSIS_CHURN_MIN_DAYS", default=30)
# A customer with a single order is at churn risk after this many days without a second one.
SALES_ANALYSIS_ONE_ORDER_CHURN_DAYS = env.int("SALES_ANALYSIS_ONE_ORDER_CHURN_DAYS", default=180)
# Lifetime value = spent so far + the years ahead at the customer's past pace (none at churn risk).
SALES_ANALYSIS_CLV_YEARS = env.int("SALES_ANALYSIS_CLV_YEARS", default=3)

# Catalogue (sales.models.catalog) ----------------------------------------------------------------
# Tax rate given to new products, as a fraction (0.13 = 13% VAT on goods); each product can differ.
SALES_DEFAULT_TAX_RATE = env.str("SALES_DEFAULT_TAX_RATE", default="0.13")

# Quotes (sales.services.quotes, sales.services.quote_documents) -------------------------------
# Company name printed at the top of quote PDFs and in quote e-mails (default: the CRM's name).
SALES_QUOTE_ISSUER = env.str("SALES_QUOTE_ISSUER", default="")
# Days a new quote is valid by default.
SALES_QUOTE_VALIDITY_DAYS = env.int("SALES_QUOTE_VALIDITY_DAYS", default=30)
# Terms pre-filled on new quotes (payment, delivery...).
SALES_QUOTE_DEFAULT_TERMS = env.str("SALES_QUOTE_DEFAULT_TERMS", default="")
# TrueType font (.ttf, or .ttc with TrueType outlines) embedded in quote PDFs; empty = the packaged
# WenQuanYi Micro Hei (PyPI paperang-p2-fonts-cjk). Example: C:\Windows\Fonts\msyh.ttc
SALES_QUOTE_FONT_PATH = env.str("SALES_QUOTE_FONT_PATH", default="")

# Orders and payments (sales.services.payments) -------------------------------------------------
# Owners are reminded of an instalment this many days before it falls due (daily beat task).
SALES_PAYMENT_REMINDER_DAYS = env.int("SALES_PAYMENT_REMINDER_DAYS", default=3)

# Email -------------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 50 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 45 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "crm.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {"TITLE": "CRM API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# Forms -------------------------------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Security headers -------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# Logging -----------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
