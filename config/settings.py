"""Settings: one base, overridden by environment variables.

`DJANGO_ENV=production` switches on the production shape (secure cookies, HSTS, SSL redirect, required
secrets). Everything a deployment changes is read from the environment; see docs/configuration.md.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("APP_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


ENVIRONMENT = env("DJANGO_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
# pytest (>= 8.2) sets PYTEST_VERSION before Django is configured; APP_TESTING=1 forces it elsewhere.
TESTING = env_bool("APP_TESTING", "PYTEST_VERSION" in os.environ)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY") if PRODUCTION else env("DJANGO_SECRET_KEY", "dev-only-insecure-key")
ALLOWED_HOSTS = [
    h for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (no CDN)
    "axes",
    "guardian",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "tenants",
    "accounts",
    "amazon",
    "repricing",
    "inventory",
    "advertising",
    "reports",
    "privacy",
    "support",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last: opens the request transaction and sets the tenant inside it (see tenants/middleware.py).
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "accounts.context_processors.dashboard",
            ],
        },
    },
]

# --- Databases ----------------------------------------------------------------------------------------
# Three roles on one database (see docs/tenancy.md):
#   default  - the runtime role: not superuser, not owner, not BYPASSRLS. Everything the product does.
#   platform - a role with BYPASSRLS for audited cross-tenant work (staff admin, retention purges).
#   owner    - owns the schema; used only by `migrate` (tenants.db.as_owner), never configured as an alias.
DATABASE_URL = env("DATABASE_URL", "postgresql://app_runtime@localhost:5432/sellerpilot")
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL", DATABASE_URL)
DATABASE_PLATFORM_URL = env("DATABASE_PLATFORM_URL", DATABASE_URL)


def _database(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    )
    config["CONN_HEALTH_CHECKS"] = True
    config["ATOMIC_REQUESTS"] = False  # tenants.middleware opens the request transaction itself
    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    options.setdefault("connect_timeout", 5)
    config["OPTIONS"] = options
    return config


DATABASES = {
    "default": _database(DATABASE_URL),
    "platform": _database(DATABASE_PLATFORM_URL),
}
DATABASE_OWNER = _database(DATABASE_OWNER_URL)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, bearer tokens, throttling, idempotency, Celery broker ------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_url_for_test_worker(url: str) -> str:
    """Parallel test workers (pytest-xdist) each get their own Redis database, since tests flush it."""
    from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not (TESTING and worker.startswith("gw")):
        return url
    parts = urlsplit(url)
    offset = int(worker[2:]) + 1
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        db = (int(query.get("db", ["0"])[0]) + offset) % 16
        query["db"] = [str(db)]
        return f"unix://{parts.path}?{urlencode(query, doseq=True)}"
    db = (int(parts.path.strip("/") or 0) + offset) % 16
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


REDIS_URL = _redis_url_for_test_worker(REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
    }
}

# --- Auth ----------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user row

OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "SellerPilot")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # never show TOTP keys or QR codes in the staff admin

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
CSRF_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_HTTPONLY = True
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

# Dashboard bearer tokens (kept in the browser's sessionStorage, stored hashed in Redis).
DASHBOARD_TOKEN_IDLE_SECONDS = env_int("DASHBOARD_TOKEN_IDLE_SECONDS", 15 * 60)
DASHBOARD_TOKEN_ABSOLUTE_SECONDS = env_int("DASHBOARD_TOKEN_ABSOLUTE_SECONDS", 8 * 60 * 60)
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 7)

# --- Security headers -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# --- Static files ---------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Email ----------------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "SellerPilot <no-reply@sellerpilot.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.DashboardTokenAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],  # enforces DATA_UPLOAD_MAX_MEMORY_SIZE (413)
    "DEFAULT_THROTTLE_CLASSES": ["config.api.TenantRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"tenant": env("API_TENANT_RATE", "600/min")},
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Requests larger than this are refused before parsing (413 for the API).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 60 * 60)
# How long an unfinished request holds its Idempotency-Key (a crashed request frees it after this).
IDEMPOTENCY_LOCK_SECONDS = env_int("IDEMPOTENCY_LOCK_SECONDS", 120)

SPECTACULAR_SETTINGS = {
    "TITLE": "SellerPilot API",
    "DESCRIPTION": "Automation for Amazon sellers. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and its docs page are public (they describe, they do not expose data).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl null: no request to a third-party validator; nothing persisted in localStorage.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.roles.Role",
        "ThemeEnum": "accounts.models.User.Theme",
        "SellerConnectionStatusEnum": "amazon.models.SellerConnection.Status",
        "ListingStatusEnum": "amazon.models.Listing.Status",
        "OrderStatusEnum": "amazon.models.Order.Status",
        "PriceSubmissionStatusEnum": "repricing.models.PriceSubmission.Status",
        "BoundsImportStatusEnum": "repricing.models.BoundsImport.Status",
        "BacktestStatusEnum": "repricing.models.Backtest.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------------------


def _broker_url(redis_url: str) -> str:
    """kombu spells a Unix-socket Redis `redis+socket://`, with the database as virtual_host."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


CELERY_BROKER_URL = env("CELERY_BROKER_URL", _broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ["default", "sync", "repricing", "ads", "reports"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "dispatch-tenant-work": {"task": "tenants.dispatch", "schedule": crontab(minute="*")},
}
# A run still "running" this long after it started outlived every task time limit: its worker died.
# tenants.reap_stale_runs marks it failed so sellers do not watch a run that will never finish.
JOB_RUN_STALE_AFTER_SECONDS = env_int("JOB_RUN_STALE_AFTER_SECONDS", 2 * 60 * 60)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Amazon: credentials at rest, LWA tokens, endpoints --------------------------------------------------
# Fernet keys for the Amazon credentials at rest, comma-separated, newest first: the first encrypts, all
# decrypt (MultiFernet), so a key is rotated by prepending a new one and running
# `manage.py rotate_encryption_keys`. Required in production. Tests get a fixed test-only key. In
# development `python -m config.services` exports var/fernet_key; without it the setting stays empty and
# amazon/crypto.py raises ImproperlyConfigured at the first use (not here, so that tools which only load
# the settings, such as mypy's Django plugin or a Docker build's collectstatic, still work).
_TEST_ONLY_FERNET_KEY = "dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaW4tcHJvZCE="  # "test-only-key-never-use-in-prod!"
FIELD_ENCRYPTION_KEYS = [
    k.strip() for k in os.environ.get("FIELD_ENCRYPTION_KEYS", "").split(",") if k.strip()
]
if not FIELD_ENCRYPTION_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured("Set the environment variable FIELD_ENCRYPTION_KEYS.")
    if TESTING:
        FIELD_ENCRYPTION_KEYS = [_TEST_ONLY_FERNET_KEY]

# Outside production, Amazon is the local simulator (`make run` starts it on SIMULATOR_PORT; tests start
# their own and override these settings), and the platform app is the simulator's demo app
# (amazon/simulator/market.py DEMO_CLIENT_ID / DEMO_CLIENT_SECRET; amazon/tests/test_connect.py checks
# they match). Production talks to Amazon and needs LWA_CLIENT_ID / LWA_CLIENT_SECRET / SP_API_APP_ID.
SIMULATOR_PORT = env_int("SIMULATOR_PORT", 8100)
SIMULATOR_URL = "" if PRODUCTION else env("SIMULATOR_URL", f"http://127.0.0.1:{SIMULATOR_PORT}")
_SIMULATOR_APP = (
    "amzn1.application-oa2-client.simulatordemo0000000000000001",
    "amzn1.oa2-cs.v1.simulatordemosecret",
)

# Login with Amazon: the token endpoint (tests and demo mode point it at the simulator) and the platform
# application's own credentials (sellers who bring their own developer app store theirs, encrypted).
# The consent flow exchanges `spapi_oauth_code` with these, and platform-app connections refresh with them.
LWA_TOKEN_URL = env(
    "LWA_TOKEN_URL",
    f"{SIMULATOR_URL}/auth/o2/token" if SIMULATOR_URL else "https://api.amazon.com/auth/o2/token",
)
LWA_CLIENT_ID = env("LWA_CLIENT_ID", "" if PRODUCTION else _SIMULATOR_APP[0])
LWA_CLIENT_SECRET = env("LWA_CLIENT_SECRET", "" if PRODUCTION else _SIMULATOR_APP[1])
# The Seller Central website authorisation flow: the platform app's id (amzn1.sp.solution.…; outside
# production the simulator's demo app, amazon/simulator/market.py DEMO_APPLICATION_ID), the consent page
# per region (outside production the simulator's, amazon/simulator/consent.py), and `version=beta` for an
# app still in draft (never in production).
SP_API_APP_ID = env("SP_API_APP_ID", "" if PRODUCTION else "amzn1.sp.solution.sellerpilot-development")
_SELLER_CENTRAL = {
    "NA": "https://sellercentral.amazon.com",
    "EU": "https://sellercentral-europe.amazon.com",
    "FE": "https://sellercentral.amazon.co.jp",
}
SELLER_CENTRAL_CONSENT_URLS = {
    region: env(f"SELLER_CENTRAL_CONSENT_URL_{region}", f"{SIMULATOR_URL or origin}/apps/authorize/consent")
    for region, origin in _SELLER_CENTRAL.items()
}
SP_API_CONSENT_BETA = env_bool("SP_API_CONSENT_BETA", not PRODUCTION) and not PRODUCTION
# How long a consent link (its signed `state`) stays valid.
SP_API_CONSENT_MAX_AGE_SECONDS = env_int("SP_API_CONSENT_MAX_AGE_SECONDS", 600)
LWA_HTTP_TIMEOUT_SECONDS = float(env("LWA_HTTP_TIMEOUT_SECONDS", "10"))
# Access tokens are cached (encrypted) until `expires_in` minus this margin, so they are replaced before
# Amazon expires them. LWA_TOKEN_TTL_SECONDS, when set, caps the cache lifetime further.
LWA_TOKEN_REFRESH_MARGIN_SECONDS = env_int("LWA_TOKEN_REFRESH_MARGIN_SECONDS", 300)
LWA_TOKEN_TTL_SECONDS = env_int("LWA_TOKEN_TTL_SECONDS", 0) or None
# How long a worker waits for another worker's token refresh before giving up.
LWA_TOKEN_LOCK_WAIT_SECONDS = float(env("LWA_TOKEN_LOCK_WAIT_SECONDS", "15"))
# SP-API base URL; empty means Amazon's regional endpoint (sp_api's Marketplaces enum). Outside
# production it defaults to the simulator.
SP_API_ENDPOINT = env("SP_API_ENDPOINT", SIMULATOR_URL)
SP_API_HTTP_TIMEOUT_SECONDS = float(env("SP_API_HTTP_TIMEOUT_SECONDS", "30"))
# Retries of one SP-API call (429, 5xx, timeouts): full-jitter exponential backoff within this budget.
SP_API_RETRY_BUDGET_SECONDS = float(env("SP_API_RETRY_BUDGET_SECONDS", "60"))
SP_API_MAX_ATTEMPTS = env_int("SP_API_MAX_ATTEMPTS", 6)
SP_API_RETRY_BASE_DELAY_SECONDS = float(env("SP_API_RETRY_BASE_DELAY_SECONDS", "0.5"))
# Amazon Ads API (amazon/ads_clients.py): the simulator outside production, else Amazon's regional Ads
# endpoint. The Ads app's LWA client defaults to the SP-API one (one LWA app may hold both).
ADS_API_ENDPOINT = env("ADS_API_ENDPOINT", SIMULATOR_URL)
ADS_CLIENT_ID = env("ADS_CLIENT_ID", "")
ADS_CLIENT_SECRET = env("ADS_CLIENT_SECRET", "")
# The Ads consent page (Login with Amazon authorisation, scope advertising::campaign_management) per
# region; outside production the simulator's (amazon/simulator/ads_app.py).
ADS_CONSENT_URLS = {
    region: env(f"ADS_CONSENT_URL_{region}", f"{SIMULATOR_URL}/ap/oa" if SIMULATOR_URL else amazon_url)
    for region, amazon_url in (
        ("NA", "https://www.amazon.com/ap/oa"),
        ("EU", "https://eu.account.amazon.com/ap/oa"),
        ("FE", "https://apac.account.amazon.com/ap/oa"),
    )
}
# Orders sync: how far back the first pass reads; finances: how much of the last pass each run re-reads
# (Amazon's finances answer names no upper bound, so a window overlaps; the natural keys dedupe it).
AMAZON_ORDERS_LOOKBACK_DAYS = env_int("AMAZON_ORDERS_LOOKBACK_DAYS", 30)
AMAZON_FINANCES_OVERLAP_HOURS = float(env("AMAZON_FINANCES_OVERLAP_HOURS", "48"))
# Disconnected sellers' Amazon data is purged this many days after disconnection (privacy policy).
AMAZON_DATA_RETENTION_DAYS = env_int("AMAZON_DATA_RETENTION_DAYS", 30)
# Offer snapshots (five-minutely, the repricer's history) older than this are deleted daily; each
# listing's newest is always kept (amazon/retention.py).
OFFER_SNAPSHOT_RETENTION_DAYS = env_int("OFFER_SNAPSHOT_RETENTION_DAYS", 90)
if OFFER_SNAPSHOT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("OFFER_SNAPSHOT_RETENTION_DAYS must be at least 1.")

# Notifications intake (POST /amazon/notifications, docs/amazon.md "Notifications"): each request is signed
# with HMAC-SHA256 over "<timestamp>.<body>" with this shared secret (comma-separated: newest first; every
# one verifies, so a secret is rotated without downtime). `python -m config.services` exports a development
# secret (var/notifications_secret); tests get a fixed test-only one; empty means the intake refuses
# everything (503) until it is set. Requests older (or newer) than the tolerance are refused as replays.
_TEST_ONLY_NOTIFICATIONS_SECRET = "test-only-notifications-secret-never-use-in-prod"
AMAZON_NOTIFICATIONS_SECRET = env(
    "AMAZON_NOTIFICATIONS_SECRET", _TEST_ONLY_NOTIFICATIONS_SECRET if TESTING and not PRODUCTION else ""
)
AMAZON_NOTIFICATIONS_MAX_AGE_SECONDS = env_int("AMAZON_NOTIFICATIONS_MAX_AGE_SECONDS", 300)
# The largest notification body accepted (bytes); Amazon's are a few kilobytes (at most 20 offers).
AMAZON_NOTIFICATIONS_MAX_BYTES = env_int("AMAZON_NOTIFICATIONS_MAX_BYTES", 256 * 1024)
# Notifications over SQS (production; docs/amazon.md "Notifications over SQS"): the queue Amazon delivers to
# (empty: no subscriptions are made and `manage.py consume_notifications` refuses to start), its ARN for
# createDestination (empty: derived from the URL and the region), the AWS region, and the SQS endpoint
# (empty: AWS's own; outside production the simulator's). AWS credentials come from boto3's standard
# chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance or task role).
AMAZON_NOTIFICATIONS_SQS_QUEUE_URL = env("AMAZON_NOTIFICATIONS_SQS_QUEUE_URL", "")
AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN = env("AMAZON_NOTIFICATIONS_SQS_QUEUE_ARN", "")
AMAZON_NOTIFICATIONS_SQS_REGION = env("AMAZON_NOTIFICATIONS_SQS_REGION", "us-east-1")
AMAZON_NOTIFICATIONS_SQS_ENDPOINT_URL = env("AMAZON_NOTIFICATIONS_SQS_ENDPOINT_URL", SIMULATOR_URL)
# Long poll (seconds, at most 20), how long a received message stays invisible to other consumers while
# it is stored, and after how many receives a message we cannot read is deleted when the queue has no
# dead-letter queue (with one, SQS's redrive policy moves it aside instead).
AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS = env_int("AMAZON_NOTIFICATIONS_SQS_WAIT_SECONDS", 20)
AMAZON_NOTIFICATIONS_SQS_VISIBILITY_TIMEOUT = env_int("AMAZON_NOTIFICATIONS_SQS_VISIBILITY_TIMEOUT", 60)
AMAZON_NOTIFICATIONS_SQS_MAX_RECEIVES = env_int("AMAZON_NOTIFICATIONS_SQS_MAX_RECEIVES", 5)

# --- Repricing tools: SKU pricing by CSV, backtests (docs/repricing.md) ---------------------------------
REPRICING_IMPORT_MAX_BYTES = env_int("REPRICING_IMPORT_MAX_BYTES", 5 * 1024 * 1024)
REPRICING_IMPORT_MAX_ROWS = env_int("REPRICING_IMPORT_MAX_ROWS", 100_000)
# Files up to this many rows are checked (and applied) in the request; larger ones by a background job.
REPRICING_IMPORT_INLINE_ROWS = env_int("REPRICING_IMPORT_INLINE_ROWS", 2_000)
REPRICING_BACKTEST_MAX_DAYS = env_int("REPRICING_BACKTEST_MAX_DAYS", 90)
REPRICING_BACKTEST_MAX_SKUS = env_int("REPRICING_BACKTEST_MAX_SKUS", 5_000)
# Offer snapshots one backtest may replay (about 3,000 a second: 3 million is some 17 minutes).
REPRICING_BACKTEST_MAX_OBSERVATIONS = env_int("REPRICING_BACKTEST_MAX_OBSERVATIONS", 3_000_000)
# Their tasks live next to their services (a worker imports them here; autodiscovery finds only tasks.py).
CELERY_IMPORTS = ["repricing.bounds_import", "repricing.backtest"]

# --- Repricing: sending prices to Amazon (repricing/submission.py) --------------------------------------
# Up to this many changes of one connection and marketplace go as single patchListingsItem calls; more
# go as one JSON_LISTINGS_FEED.
REPRICING_PATCH_MAX = env_int("REPRICING_PATCH_MAX", 20)
REPRICING_FEED_MAX_MESSAGES = env_int("REPRICING_FEED_MAX_MESSAGES", 5000)
# A price still queued after this long (a long 429 storm) is not sent: the next decision sends a fresh one.
REPRICING_QUEUED_MAX_AGE_SECONDS = env_int("REPRICING_QUEUED_MAX_AGE_SECONDS", 3600)
# A "sending" row without Amazon's answer older than this has an unknown outcome (above any send's time
# limit); it is watched for REPRICING_UNKNOWN_WATCH_SECONDS, never sent again.
REPRICING_SENDING_STALE_SECONDS = env_int("REPRICING_SENDING_STALE_SECONDS", 600)
REPRICING_UNKNOWN_WATCH_SECONDS = env_int("REPRICING_UNKNOWN_WATCH_SECONDS", 3600)
# An accepted price not live after this long fails (Amazon usually applies one within minutes).
REPRICING_FOLLOW_UP_MAX_HOURS = float(env("REPRICING_FOLLOW_UP_MAX_HOURS", "24"))

# --- Repricing: the scheduled poll (repricing/triggers.py) ----------------------------------------------
# Share of getListingOffersBatch's published rate one connection's poll may use per period; the rest is
# for the full offers sync and "reprice now" (all share one token bucket).
REPRICING_POLL_QUOTA_SHARE = float(env("REPRICING_POLL_QUOTA_SHARE", "0.5"))

# --- Logging --------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one line per Amazon call is noise; our client logs what matters
        "werkzeug": {"level": "WARNING"},  # the in-process simulator's access log (tests, benchmarks)
    },
}
