"""Django settings: every value comes from an environment variable with a safe default.

This is the only module of the Django project that reads the environment (see README,
"Configuration").
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
#: Local state of `make run`: SQLite database, static files, private Redis, admin password.
RUN_DIR = Path(os.environ.get("ARAGORA_RUN_DIR") or BASE_DIR / ".run")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _env_list(name: str, default: str) -> list[str]:
    raw = os.environ.get(name) or default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"-?[0-9]+", raw):  # plain digits: int() would also take "1_0"
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}")
    return int(raw)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def _env_depths(name: str) -> dict[str, int]:
    """Read ``queue=limit,queue=limit`` (plain positive integers) into a dict."""
    depths: dict[str, int] = {}
    for item in _env_list(name, ""):
        queue, _, limit = (part.strip() for part in item.partition("="))
        if not queue or not limit.isascii() or not limit.isdigit():
            raise ImproperlyConfigured(f"{name} must be queue=limit,..., got {item!r}")
        depths[queue] = int(limit)
    return depths


def _env_networks(name: str) -> list[str]:
    networks = _env_list(name, "")
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            msg = f"{name}: {network!r} is not a network (a.b.c.d/n)"
            raise ImproperlyConfigured(msg) from None
    return networks


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    # The default SQLite file needs its folder; dj-database-url does not create it.
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{RUN_DIR / 'db.sqlite3'}"


DEBUG = _env_bool("ARAGORA_DEBUG", default=False)
ALLOWED_HOSTS = _env_list("ARAGORA_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("ARAGORA_CSRF_TRUSTED_ORIGINS", "")

#: HTTPS deployment (README, "Deployment"): secure cookies, HSTS, redirect to HTTPS, and whether
#: to trust X-Forwarded-Proto from the proxy in front. Probes and scrapes are never redirected.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("ARAGORA_SECURE_COOKIES", default=False)
SECURE_HSTS_SECONDS = _env_int("ARAGORA_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("ARAGORA_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = _env_bool("ARAGORA_SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = _env_bool("ARAGORA_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if _env_bool("ARAGORA_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "queue_app",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's own, skipped for token requests to the queue API (aragora_site/middleware.py).
    "aragora_site.middleware.BrowserAuthenticationMiddleware",
    "aragora_site.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "aragora_site.urls"
WSGI_APPLICATION = "aragora_site.wsgi.application"

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
            ],
        },
    },
]

#: Seconds a thread keeps its database connection for its next requests (0: closed at the end of
#: each request, Django's default). Only ``bin/serve`` sets it: the site's ASGI handler serves each
#: request on a reused thread (a few are kept), as WSGI does, so a kept connection serves the next
#: requests; workers run units of work on many threads and close their connections after each.
#: A kept connection is checked before it is used again (a restarted database drops it).
DATABASES = {
    "default": dj_database_url.parse(
        _database_url(),
        conn_max_age=_env_int("ARAGORA_DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
#: Times to the second in the admin (aragora_site/formats/en/formats.py).
FORMAT_MODULE_PATH = ["aragora_site.formats"]

STATIC_URL = "static/"
STATIC_ROOT = RUN_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REDIS_URL = os.environ.get("REDIS_URL") or "redis://localhost:6379"
#: Raw ARAGORA_QUEUE_* values (None: library default); queue_app.conf converts and checks them.
ARAGORA_QUEUE = {
    "key_prefix": os.environ.get("ARAGORA_QUEUE_PREFIX"),
    "retry_max_attempts": os.environ.get("ARAGORA_QUEUE_RETRY_MAX"),
    "retry_base_delay": os.environ.get("ARAGORA_QUEUE_RETRY_BASE_DELAY"),
    "retry_max_delay": os.environ.get("ARAGORA_QUEUE_RETRY_MAX_DELAY"),
    "claim_idle_ms": os.environ.get("ARAGORA_QUEUE_CLAIM_IDLE_MS"),
    "max_job_ttl_days": os.environ.get("ARAGORA_QUEUE_MAX_TTL_DAYS"),
    "worker_block_ms": os.environ.get("ARAGORA_QUEUE_WORKER_BLOCK_MS"),
    "consumer_group": os.environ.get("ARAGORA_QUEUE_CONSUMER_GROUP"),
    "cluster_keys": os.environ.get("ARAGORA_QUEUE_CLUSTER_KEYS"),
    "ledger_max_len": os.environ.get("ARAGORA_QUEUE_LEDGER_MAXLEN"),
    "socket_timeout": os.environ.get("ARAGORA_QUEUE_SOCKET_TIMEOUT"),
    "connect_timeout": os.environ.get("ARAGORA_QUEUE_CONNECT_TIMEOUT"),
    "health_check_interval": os.environ.get("ARAGORA_QUEUE_HEALTH_CHECK_INTERVAL"),
    "debate_max_rounds": os.environ.get("ARAGORA_DEBATE_MAX_ROUNDS"),
    "debate_max_agents": os.environ.get("ARAGORA_DEBATE_MAX_AGENTS"),
    "debate_max_question_chars": os.environ.get("ARAGORA_DEBATE_MAX_QUESTION_CHARS"),
    "debate_timeout_seconds": os.environ.get("ARAGORA_DEBATE_TIMEOUT_SECONDS"),
    "max_depth": os.environ.get("ARAGORA_QUEUE_MAX_DEPTH"),
    "enqueue_replicas": os.environ.get("ARAGORA_QUEUE_ENQUEUE_REPLICAS"),
    "enqueue_wait_ms": os.environ.get("ARAGORA_QUEUE_ENQUEUE_WAIT_MS"),
}
#: Queues that may hold jobs besides those of the worker kinds and of TASKS, which are always
#: declared (queue_app.conf); enqueueing to any other queue is refused.
ARAGORA_QUEUES = _env_list("ARAGORA_QUEUES", "")
#: Per-queue limits of waiting jobs that replace ARAGORA_QUEUE_MAX_DEPTH for the queues named
#: ("debates=1000,webhooks=5000" in the environment).
ARAGORA_QUEUE_MAX_DEPTHS = _env_depths("ARAGORA_QUEUE_MAX_DEPTHS")

#: Dotted path of a debate executor factory; empty: the built-in executor (workers.debate).
ARAGORA_DEBATE_EXECUTOR = os.environ.get("ARAGORA_DEBATE_EXECUTOR") or None
#: Dotted path of an explain generator factory (batch_explainability queue); empty: the built-in
#: generator, which asks the debate's own agents (workers.batch).
ARAGORA_EXPLAIN_GENERATOR = os.environ.get("ARAGORA_EXPLAIN_GENERATOR") or None
#: Consensus healing (README, "Consensus healing"): the ARAGORA_HEALING_* variables, checked and
#: converted by workers.healing.HealingConfig.from_env (aragora.E008).
ARAGORA_HEALING_ENV = {
    name: value for name, value in os.environ.items() if name.startswith("ARAGORA_HEALING_")
}
#: Provider variables of the agents (debates, explanations, gauntlets; README, "Workers").
ARAGORA_AGENT_ENV = {
    name: os.environ[name]
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ARAGORA_ANTHROPIC_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ARAGORA_OPENAI_MODEL",
        "ARAGORA_AGENT_CONNECT_TIMEOUT",
        "ARAGORA_AGENT_READ_TIMEOUT",
        "ARAGORA_AGENT_MAX_TOKENS",
    )
    if name in os.environ
}
#: Django layer of the queue (README, "Configuration"): ledger rows older than this many days are
#: deleted; larger REST request bodies get 413; private webhook targets are refused unless allowed.
ARAGORA_LEDGER_RETENTION_DAYS = _env_int("ARAGORA_LEDGER_RETENTION_DAYS", 30)
ARAGORA_API_MAX_BODY_BYTES = _env_int("ARAGORA_API_MAX_BODY_BYTES", 256 * 1024)
#: Seconds a client has to send a whole request body (aragora_site.edge answers 408 after).
ARAGORA_HTTP_BODY_TIMEOUT = _env_int("ARAGORA_HTTP_BODY_TIMEOUT", 30)
ARAGORA_WEBHOOK_ALLOW_PRIVATE = _env_bool("ARAGORA_WEBHOOK_ALLOW_PRIVATE", default=False)
#: Link of a trace in the tracing UI, with ``{trace_id}`` (e.g. Jaeger's
#: ``http://localhost:16686/trace/{trace_id}``); empty: the admin shows trace ids unlinked.
ARAGORA_TRACE_URL = os.environ.get("ARAGORA_TRACE_URL") or ""
if ARAGORA_TRACE_URL and "{trace_id}" not in ARAGORA_TRACE_URL:
    raise ImproperlyConfigured(
        f"ARAGORA_TRACE_URL must contain {{trace_id}}, got {ARAGORA_TRACE_URL!r}"
    )
#: Enqueues per user (POST jobs/), in DRF's rate syntax; "off" (or empty) turns the limit off.
ARAGORA_API_ENQUEUE_RATE = (os.environ.get("ARAGORA_API_ENQUEUE_RATE") or "100/second").strip()
#: /metrics (README, "Observability"): public unless a bearer token or networks are set; with
#: both, either lets a scraper in.
ARAGORA_METRICS_TOKEN = os.environ.get("ARAGORA_METRICS_TOKEN") or ""
ARAGORA_METRICS_ALLOW = _env_networks("ARAGORA_METRICS_ALLOW")

#: Transcription worker (README, "Transcription"): backends in order, the OpenAI-compatible API
#: (OpenAI, a self-hosted Whisper server...), a local faster-whisper model folder, input limits.
ARAGORA_TRANSCRIPTION = {
    "backend_order": tuple(_env_list("ARAGORA_WHISPER_BACKEND_ORDER", "openai,faster-whisper")),
    "api_base_url": os.environ.get("ARAGORA_TRANSCRIPTION_BASE_URL")
    or os.environ.get("OPENAI_BASE_URL")
    or "https://api.openai.com",
    "api_key": os.environ.get("ARAGORA_TRANSCRIPTION_API_KEY")
    or os.environ.get("OPENAI_API_KEY")
    or "",
    "api_model": os.environ.get("ARAGORA_TRANSCRIPTION_MODEL") or "whisper-1",
    "faster_whisper_model": os.environ.get("ARAGORA_FASTER_WHISPER_MODEL") or "",
    "media_root": os.environ.get("ARAGORA_TRANSCRIPTION_MEDIA_ROOT") or "",
    "work_dir": os.environ.get("ARAGORA_TRANSCRIPTION_WORK_DIR") or "",
    "max_bytes": _env_int("ARAGORA_TRANSCRIPTION_MAX_BYTES", 100 * 1024 * 1024),
    "max_duration_seconds": _env_float("ARAGORA_TRANSCRIPTION_MAX_SECONDS", 4 * 3600.0),
    "allow_private_urls": _env_bool("ARAGORA_TRANSCRIPTION_ALLOW_PRIVATE", default=False),
}
#: Routing worker (README, "Routing"): links in messages, the Telegram Bot API, retry backoff.
ARAGORA_ROUTING = {
    "public_url": os.environ.get("ARAGORA_PUBLIC_URL") or "http://localhost:8000",
    "telegram_base_url": os.environ.get("ARAGORA_TELEGRAM_BASE_URL") or "https://api.telegram.org",
    "telegram_bot_token": os.environ.get("ARAGORA_TELEGRAM_BOT_TOKEN") or "",
    "allow_private": ARAGORA_WEBHOOK_ALLOW_PRIVATE,
    "retry_delay_seconds": _env_float("ARAGORA_ROUTING_RETRY_DELAY", 30.0),
}
#: Email of the routing worker (routing_email jobs, email origins): Django's mailers, SMTP unless
#: ARAGORA_EMAIL_BACKEND names another backend (django.core.mail.backends.console.EmailBackend...).
_EMAIL_BACKEND = (
    os.environ.get("ARAGORA_EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
)
_SMTP_OPTIONS = {
    "host": os.environ.get("EMAIL_HOST") or "localhost",
    "port": _env_int("EMAIL_PORT", 25),
    "username": os.environ.get("EMAIL_HOST_USER") or "",
    "password": os.environ.get("EMAIL_HOST_PASSWORD") or "",
    "use_tls": _env_bool("EMAIL_USE_TLS", default=False),
    "use_ssl": _env_bool("EMAIL_USE_SSL", default=False),
    "timeout": _env_int("EMAIL_TIMEOUT", 10),
}
MAILERS = {
    "default": {
        "BACKEND": _EMAIL_BACKEND,
        "OPTIONS": _SMTP_OPTIONS if _EMAIL_BACKEND.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "aragora@localhost"
#: Fernet keys of webhook signing secrets at rest, newest first (README, "Webhooks"); empty: a
#: key derived from SECRET_KEY (`check --deploy` warns: aragora.W002).
ARAGORA_WEBHOOK_SECRET_KEYS = _env_list("ARAGORA_WEBHOOK_SECRET_KEYS", "")

#: django.tasks (README, "django.tasks"): @task calls become jobs; Django's "default" queue runs on
#: the Redis queue "tasks" (manage.py queue_worker --queues tasks).
TASKS = {
    "default": {
        "BACKEND": "queue_app.tasks.backend.RedisStreamsTaskBackend",
        "QUEUES": ["default"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "queue_app.api.permissions.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "queue_app.api.negotiation.RememberedNegotiation",
    "DEFAULT_SCHEMA_CLASS": "queue_app.api.schema.QueueAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aragora queue API",
    "DESCRIPTION": "Enqueue, inspect, cancel and retry background jobs.",
    "VERSION": "0.1.0",
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies get their own components, marked additionalProperties: false.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "queue_app.api.schema.strict_request_bodies",
    ],
}

#: Observability (README, "Observability"): log lines as JSON (default) or plain text.
ARAGORA_LOG_LEVEL = (os.environ.get("ARAGORA_LOG_LEVEL") or "INFO").strip().upper()
if ARAGORA_LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        "ARAGORA_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
        f"got {os.environ.get('ARAGORA_LOG_LEVEL')!r}"
    )
ARAGORA_LOG_FORMAT = (os.environ.get("ARAGORA_LOG_FORMAT") or "json").strip().lower()
if ARAGORA_LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(
        f"ARAGORA_LOG_FORMAT must be json or text, got {ARAGORA_LOG_FORMAT!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "queue_app.observability.logformat.JsonFormatter"},
        "text": {"()": "queue_app.observability.logformat.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": ARAGORA_LOG_FORMAT},
    },
    "root": {
        "handlers": ["console"],
        "level": ARAGORA_LOG_LEVEL,
    },
    # httpx logs every request URL at INFO; webhook URLs may carry secrets in their path.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

#: Tracing (queue_app.observability.telemetry): off unless an exporter is set; the OpenTelemetry SDK
#: reads the other OTEL_* variables (resource attributes, sampler, OTLP headers) itself.
ARAGORA_TRACING = {
    "disabled": _env_bool("OTEL_SDK_DISABLED", default=False),
    "exporters": _env_list("OTEL_TRACES_EXPORTER", ""),
    "otlp_endpoint": bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ),
    "file": os.environ.get("ARAGORA_OTEL_FILE") or "",
    "service_name": os.environ.get("OTEL_SERVICE_NAME") or "",
    # Requests that would make most traces and tell nothing: scrapes and probes.
    "excluded_urls": os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS")
    or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    or "metrics,healthz,readyz",
}

# Last, so that a malformed variable above is reported first.
#: Only with ARAGORA_DEBUG on: a key known to everyone (check --deploy flags the prefix, W009).
DEBUG_SECRET_KEY = "django-insecure-aragora-debug-only-key-set-ARAGORA_SECRET_KEY"
SECRET_KEY = os.environ.get("ARAGORA_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ARAGORA_SECRET_KEY is not set: set it to a long random string "
            "(make run keeps one in .run/secret-key), or set ARAGORA_DEBUG=true for development"
        )
    SECRET_KEY = DEBUG_SECRET_KEY
