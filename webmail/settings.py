"""Postane's one settings module: every knob comes from the environment.

Production and development differ only by values; `.env.example` lists every variable.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from webmail.env import (
    ConfigError,
    database_from_env,
    encryption_keys_from_env,
    envbool,
    envint,
    envlist,
    envnetworks,
    envports,
    envstr,
    fail,
    redis_url_from_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent

try:
    DEBUG = envbool("DEBUG", False)
    SECRET_KEY = envstr("SECRET_KEY", "insecure-development-key-only-for-debug" if DEBUG else None)
    if not DEBUG and len(SECRET_KEY) < 50:
        raise ConfigError("SECRET_KEY must be at least 50 characters long when DEBUG is off")
    ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
    if not ALLOWED_HOSTS:
        raise ConfigError("ALLOWED_HOSTS is required when DEBUG is off, as in mail.example.com")
    CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
    DATABASES = {"default": database_from_env("DATABASE_URL")}
    REDIS_URL = redis_url_from_env("REDIS_URL")
    WEBMAIL_ENCRYPTION_KEYS = encryption_keys_from_env("WEBMAIL_ENCRYPTION_KEYS", required=not DEBUG)
    WEBMAIL_SITE_NAME = envstr("WEBMAIL_SITE_NAME", "Postane")
    ALLOW_SIGNUP = envbool("ALLOW_SIGNUP", False)
    TIME_ZONE = envstr("TIME_ZONE", "UTC")
    WEBMAIL_DATA_DIR = Path(envstr("WEBMAIL_DATA_DIR", str(BASE_DIR / "data")))
    STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
    # HTTPS is on in production; `./postane run` on a laptop serves plain http://localhost.
    WEBMAIL_HTTPS = envbool("WEBMAIL_HTTPS", not DEBUG)
    WEBMAIL_BEHIND_PROXY = envbool("WEBMAIL_BEHIND_PROXY", False)
    # Only these proxies' X-Forwarded-For is believed (the login lock-outs count the client it names).
    WEBMAIL_TRUSTED_PROXIES = envnetworks("WEBMAIL_TRUSTED_PROXIES") or [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    SECURE_HSTS_SECONDS = envint("WEBMAIL_HSTS_SECONDS", 31_536_000) if WEBMAIL_HTTPS else 0
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("WEBMAIL_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = envbool("WEBMAIL_HSTS_PRELOAD", False)
    # The beat-scheduled heartbeat; /healthz calls the worker down after a few missed beats.
    WEBMAIL_HEARTBEAT_SECONDS = envint("WEBMAIL_HEARTBEAT_SECONDS", 30, minimum=1)
    WEBMAIL_HEARTBEAT_STALE_SECONDS = envint("WEBMAIL_HEARTBEAT_STALE_SECONDS", 120, minimum=1)
    # How often beat looks for work that is due or whose worker died, and how long a claim (a sync, a
    # delivery, a connection test, a parse) lasts without renewal: its holder renews it every quarter
    # of that, so a dead worker's work moves on within lease + dispatch seconds (under a minute).
    WEBMAIL_DISPATCH_SECONDS = envint("WEBMAIL_DISPATCH_SECONDS", 30, minimum=1)
    WEBMAIL_SYNC_LEASE_SECONDS = envint("WEBMAIL_SYNC_LEASE_SECONDS", 20, minimum=4)
    CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
    CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", CELERY_TASK_SOFT_TIME_LIMIT + 60, minimum=1)
    # Mail servers the workers may reach beyond the public internet (intranet servers), and ports.
    WEBMAIL_ALLOWED_MAIL_NETWORKS = envnetworks("WEBMAIL_ALLOWED_MAIL_NETWORKS")
    WEBMAIL_ALLOWED_MAIL_HOSTS = [host.lower() for host in envlist("WEBMAIL_ALLOWED_MAIL_HOSTS", [])]
    WEBMAIL_ALLOWED_MAIL_PORTS = envports("WEBMAIL_ALLOWED_MAIL_PORTS")
    # An extra CA bundle (PEM) trusted beside the system CAs, for a company's own certificate authority.
    WEBMAIL_EXTRA_CA_FILE = envstr("WEBMAIL_EXTRA_CA_FILE", "") or None
    # The resolvers the workers ask about mail servers (address or address:port, comma-separated), for
    # an intranet's own DNS; empty: the system's.
    WEBMAIL_DNS_SERVERS = envlist("WEBMAIL_DNS_SERVERS", [])
    # Mozilla's ISPDB for mailbox discovery, or an intranet's mirror of it (https only).
    WEBMAIL_ISPDB_URL = envstr("WEBMAIL_ISPDB_URL", "https://autoconfig.thunderbird.net/v1.1/")
    WEBMAIL_MAIL_TIMEOUT = envint("WEBMAIL_MAIL_TIMEOUT", 20, minimum=1)
    WEBMAIL_MIN_POLL_MINUTES = envint("WEBMAIL_MIN_POLL_MINUTES", 1, minimum=1)
    # Writing mail: how long a sent message waits so "Undo" can bring it back; attachments' limit.
    WEBMAIL_UNDO_SECONDS = envint("WEBMAIL_UNDO_SECONDS", 10, minimum=0)
    WEBMAIL_MAX_ATTACHMENTS_MB = envint("WEBMAIL_MAX_ATTACHMENTS_MB", 25, minimum=1)
    # A request body beyond the attachments and a long text is refused before it is read.
    WEBMAIL_MAX_REQUEST_BYTES = (WEBMAIL_MAX_ATTACHMENTS_MB + 3) * 1024 * 1024
    # "Test connection" can be abused to guess passwords: this many per user in ten minutes.
    WEBMAIL_CONNECTION_TESTS_PER_10_MINUTES = envint("WEBMAIL_CONNECTION_TESTS_PER_10_MINUTES", 10, minimum=1)
    # People: idle sessions end, repeated failed logins lock the user name and the address out.
    WEBMAIL_SESSION_IDLE_MINUTES = envint("WEBMAIL_SESSION_IDLE_MINUTES", 12 * 60, minimum=5)
    WEBMAIL_SESSION_MAX_HOURS = envint("WEBMAIL_SESSION_MAX_HOURS", 24, minimum=1)  # however active
    # Password-reset mail: per address asked for and per client address, in an hour.
    WEBMAIL_PASSWORD_RESETS_PER_ADDRESS = envint("WEBMAIL_PASSWORD_RESETS_PER_ADDRESS", 3, minimum=1)
    WEBMAIL_PASSWORD_RESETS_PER_CLIENT = envint("WEBMAIL_PASSWORD_RESETS_PER_CLIENT", 10, minimum=1)
    WEBMAIL_LOGIN_FAILURE_LIMIT = envint("WEBMAIL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
    WEBMAIL_LOGIN_LOCKOUT_MINUTES = envint("WEBMAIL_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
    # The site's own outgoing mail (password resets). Empty EMAIL_HOST: no reset by email.
    _email_host = envstr("EMAIL_HOST", "")
    _email_security = envstr("EMAIL_SECURITY", "starttls").lower()
    if _email_security not in {"none", "starttls", "ssl"}:
        raise ConfigError(f"EMAIL_SECURITY must be none, starttls or ssl, not {_email_security!r}")
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host or "localhost",
                "port": envint("EMAIL_PORT", 587, minimum=1),
                "username": envstr("EMAIL_HOST_USER", ""),
                "password": envstr("EMAIL_HOST_PASSWORD", ""),
                "use_tls": _email_security == "starttls",
                "use_ssl": _email_security == "ssl",
                "timeout": 30,
            },
        }
    }
    WEBMAIL_PASSWORD_RESET_BY_EMAIL = bool(_email_host)
    DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "postane@localhost")
    LOG_LEVEL = envstr("LOG_LEVEL", "INFO").upper()
    if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {LOG_LEVEL!r}")
except ConfigError as exc:
    fail(str(exc))

INSTALLED_APPS = [
    "accounts",
    "axes",
    "fetcher",
    "webmail",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webmail.sessions.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "webmail.middleware.RequestBodyLimitMiddleware",  # before anything reads the body
    "webmail.middleware.NoStoreMiddleware",
    "webmail.middleware.RememberLanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "webmail.middleware.BrowserTimeZoneMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out user name or address
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = WEBMAIL_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=WEBMAIL_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks: per user and per address
AXES_RESET_ON_SUCCESS = True  # only the signed-in user name's failures (accounts/lockout.py)
AXES_HANDLER = "accounts.lockout.OwnFailuresHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "accounts.auth.client_ip"
AXES_VERBOSE = False

ROOT_URLCONF = "webmail.urls"
WSGI_APPLICATION = "webmail.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webmail.context_processors.site",
            ],
        },
    },
]

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "postane",
        "TIMEOUT": 300,
        "OPTIONS": {"serializer": "webmail.cache.JsonSerializer"},  # never pickle what Redis hands back
    }
}
# Sessions live in PostgreSQL only (as JSON): nothing a Redis client writes can become a session.
SESSION_ENGINE = "webmail.sessions"  # the database backend; see webmail/sessions.py
# Idle expiry: every request but the background polls pushes the end forward (webmail/sessions.py).
SESSION_COOKIE_AGE = WEBMAIL_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {  # ASVS 2.1.1: at least 12 characters
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: English and Turkish ship; the browser chooses, the user may override.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("tr", _("Turkish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
# Links made from plain text (the urlize filter) are https unless they say otherwise: Django 2028 default.
URLIZE_ASSUME_HTTPS = True
LANGUAGE_COOKIE_NAME = "postane_language"
LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
LANGUAGE_COOKIE_SAMESITE = "Lax"

PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files Django writes (collectstatic) follow the umask: `./postane run` keeps its data folder private.
FILE_UPLOAD_PERMISSIONS = None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security headers. The policy allows only our own vendored assets: no CDN, no inline script.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = WEBMAIL_HTTPS
SESSION_COOKIE_SECURE = WEBMAIL_HTTPS
CSRF_COOKIE_SECURE = WEBMAIL_HTTPS
LANGUAGE_COOKIE_SECURE = WEBMAIL_HTTPS
if WEBMAIL_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is polled by load balancers and compose over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Celery: JSON only, late acknowledgement, bounded task time. Tasks take ids, never secrets.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "fetcher.tasks.heartbeat",
        "schedule": float(WEBMAIL_HEARTBEAT_SECONDS),
        "options": {"expires": float(WEBMAIL_HEARTBEAT_SECONDS)},
    },
    "dispatch-syncs": {
        "task": "fetcher.tasks.dispatch_syncs",
        "schedule": float(WEBMAIL_DISPATCH_SECONDS),
        "options": {"expires": float(WEBMAIL_DISPATCH_SECONDS)},
    },
    "refresh-statistics": {
        "task": "fetcher.tasks.refresh_statistics",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "dispatch-outgoing": {
        "task": "fetcher.tasks.dispatch_outgoing",
        "schedule": float(WEBMAIL_DISPATCH_SECONDS),
        "options": {"expires": float(WEBMAIL_DISPATCH_SECONDS)},
    },
    "purge-connection-tests": {
        "task": "accounts.tasks.purge_connection_tests",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    "requeue-unparsed": {
        "task": "fetcher.tasks.requeue_unparsed",
        "schedule": float(WEBMAIL_DISPATCH_SECONDS),
        "options": {"expires": float(WEBMAIL_DISPATCH_SECONDS)},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"level": LOG_LEVEL, "propagate": True}},
}
