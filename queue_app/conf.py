"""Django settings -> the queue library's ``QueueConfig`` (the only reader of queue settings)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from queue_app.queue.config import ENV_VARS, QueueConfig
from queue_app.queue.errors import ConfigError


def build_config() -> QueueConfig:
    """Build the queue config from ``settings.REDIS_URL`` and ``settings.ARAGORA_QUEUE``.

    Values are the raw environment strings; None means the library default.

    Raises:
        ImproperlyConfigured: a key is unknown, or a value is malformed or out of range; the
            message names the environment variable that set it.
    """
    values = {"redis_url": settings.REDIS_URL, **settings.ARAGORA_QUEUE}
    unknown = sorted(values.keys() - ENV_VARS.keys())
    if unknown:
        raise ImproperlyConfigured(f"ARAGORA_QUEUE has unknown keys: {', '.join(unknown)}")
    environ = {ENV_VARS[name]: str(raw) for name, raw in values.items() if raw is not None}
    try:
        return QueueConfig.from_env(environ)
    except ConfigError as exc:
        # Values are not echoed: REDIS_URL may carry a password.
        raise ImproperlyConfigured(f"{_culprit(environ)} is invalid: {exc}") from exc


def _culprit(environ: dict[str, str]) -> str:
    """Return the variable that fails on its own (the library's checks are per field)."""
    for var, raw in environ.items():
        try:
            QueueConfig.from_env({var: raw})
        except ConfigError:
            return var
    return "REDIS_URL or an ARAGORA_QUEUE_* variable"
