"""System checks of the queue settings (``manage.py check``; run before every command).

Ids: ``aragora.E001`` queue settings (``REDIS_URL``, ``ARAGORA_QUEUE_*``) invalid,
``E002`` ``REDIS_URL`` not a redis URL (or a malformed ``redis+sentinel://`` one),
``E003`` ledger retention, ``E004`` REST body limit,
``E005`` debate executor path, ``E006`` agent variables, ``E007`` explain generator path,
``E008`` consensus healing variables, ``E009`` enqueue rate,
``W001`` no ``TASKS`` backend on this queue, ``W002`` (``check --deploy``) webhook secrets
encrypted with a key derived from ``SECRET_KEY`` (no ``ARAGORA_WEBHOOK_SECRET_KEYS``), ``W003``
(``check --deploy``) ``/metrics`` is public. ``TASKS``
options and queue names are checked by the backend itself (``queue_app.tasks.E001``-``E004``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.tasks.checks import check_tasks
from django.utils.module_loading import import_string

from queue_app.api.throttles import EnqueueThrottle
from queue_app.conf import build_config
from queue_app.queue import ConfigError
from queue_app.queue.redis.sentinel import SENTINEL_SCHEME, parse_sentinel_url
from workers import AgentSettings, HealingConfig

#: URL schemes the queue connects with (``queue_app.queue.redis.connect``).
REDIS_SCHEMES = frozenset(
    {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster", SENTINEL_SCHEME}
)
BACKEND = "queue_app.tasks.backend.RedisStreamsTaskBackend"


@checks.register(checks.Tags.compatibility)
def check_queue_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Check ``REDIS_URL`` and the ``ARAGORA_QUEUE_*`` values as the library reads them."""
    errors = _check_redis_url(str(settings.REDIS_URL))
    try:
        build_config()
    except ImproperlyConfigured as error:
        errors.append(checks.Error(str(error), id="aragora.E001"))
    return errors


def _check_redis_url(url: str) -> list[checks.CheckMessage]:
    # The URL is never echoed: it may carry a password.
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        schemes = ", ".join(f"{name}://" for name in sorted(REDIS_SCHEMES))
        msg = f"REDIS_URL must start with one of {schemes}, not {scheme or '?'}://"
        return [checks.Error(msg, id="aragora.E002")]
    if scheme == SENTINEL_SCHEME:
        try:
            parse_sentinel_url(url)
        except ConfigError as error:
            return [checks.Error(f"REDIS_URL: {error}", id="aragora.E002")]
    return []


@checks.register(checks.Tags.compatibility)
def check_django_layer_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Check the ledger retention, the REST body limit and the debate executor settings."""
    errors: list[checks.CheckMessage] = []
    for name, check_id in (
        ("ARAGORA_LEDGER_RETENTION_DAYS", "aragora.E003"),
        ("ARAGORA_API_MAX_BODY_BYTES", "aragora.E004"),
    ):
        value = getattr(settings, name)
        if type(value) is not int or value < 1:
            errors.append(checks.Error(f"{name} must be a positive integer", id=check_id))
    errors.extend(_check_executor())
    return errors


@checks.register(checks.Tags.compatibility)
def check_tasks_backend(**kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when no ``TASKS`` backend enqueues on this queue (``queue_worker`` has no tasks)."""
    backends = getattr(settings, "TASKS", {}) or {}
    if any(conf.get("BACKEND") == BACKEND for conf in backends.values()):
        return []
    msg = f"no TASKS backend is {BACKEND}: @task calls will not reach the Redis queue"
    return [checks.Warning(msg, id="aragora.W001")]


@checks.register(checks.Tags.security, deploy=True)
def check_webhook_secret_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when webhook secrets are encrypted with a key derived from ``SECRET_KEY``."""
    if settings.ARAGORA_WEBHOOK_SECRET_KEYS:
        return []
    msg = (
        "ARAGORA_WEBHOOK_SECRET_KEYS is not set: webhook signing secrets are encrypted with a "
        "key derived from SECRET_KEY, and become unreadable if SECRET_KEY changes"
    )
    return [checks.Warning(msg, id="aragora.W002")]


#: Settings naming a factory (dotted path), with the id of their check.
FACTORY_SETTINGS = {
    "ARAGORA_DEBATE_EXECUTOR": "aragora.E005",
    "ARAGORA_EXPLAIN_GENERATOR": "aragora.E007",
}


def _check_factory(name: str, check_id: str) -> list[checks.CheckMessage]:
    path = getattr(settings, name, None)
    if not path:
        return []
    try:
        factory = import_string(path)
    except ImportError as error:
        return [checks.Error(f"{name} cannot be imported: {error}", id=check_id)]
    if not callable(factory):
        return [checks.Error(f"{name} must name a callable factory", id=check_id)]
    return []


def _check_executor() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for name, check_id in FACTORY_SETTINGS.items():
        errors += _check_factory(name, check_id)
    try:
        AgentSettings.from_env(settings.ARAGORA_AGENT_ENV)
    except (ConfigError, ValueError) as error:
        errors.append(checks.Error(f"agent settings: {error}", id="aragora.E006"))
    try:
        HealingConfig.from_env(settings.ARAGORA_HEALING_ENV)
    except ConfigError as error:
        errors.append(checks.Error(f"consensus healing settings: {error}", id="aragora.E008"))
    return errors


@checks.register(checks.Tags.compatibility)
def check_enqueue_rate(**kwargs: Any) -> list[checks.CheckMessage]:
    """Check that ``ARAGORA_API_ENQUEUE_RATE`` is off or ``<number>/<second|minute|hour|day>``."""
    rate = str(settings.ARAGORA_API_ENQUEUE_RATE).strip().lower()
    if rate in EnqueueThrottle.OFF_VALUES:
        return []
    number, _, period = rate.partition("/")
    if number.isdigit() and int(number) > 0 and period[:1] in {"s", "m", "h", "d"}:
        return []
    msg = f"ARAGORA_API_ENQUEUE_RATE must be like 100/second or off, not {rate!r}"
    return [checks.Error(msg, id="aragora.E009")]


@checks.register(checks.Tags.security, deploy=True)
def check_metrics_access(**kwargs: Any) -> list[checks.CheckMessage]:
    """Warn (``check --deploy``) when ``/metrics`` is served to anyone."""
    if settings.ARAGORA_METRICS_TOKEN or settings.ARAGORA_METRICS_ALLOW:
        return []
    msg = "/metrics is public: set ARAGORA_METRICS_TOKEN or ARAGORA_METRICS_ALLOW"
    return [checks.Warning(msg, id="aragora.W003")]


# Django registers its TASKS backend check without a tag, which a run limited to some tags (as
# queue_worker's) skips: tag it "compatibility" too (a full run still runs it once).
checks.register(check_tasks, checks.Tags.compatibility)
