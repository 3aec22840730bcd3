"""Django settings -> the queue library's ``QueueConfig`` (the only reader of queue settings)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from queue_app.queue.config import ENV_VARS, QueueConfig, valid_queue_name
from queue_app.queue.errors import ConfigError
from queue_app.tasks.backend import task_queue_names
from workers import WORKER_KIND_CLASSES


def build_config() -> QueueConfig:
    """Build the queue config from ``settings.REDIS_URL`` and ``settings.ARAGORA_QUEUE``.

    Values are the raw environment strings; None means the library default. The declared queues
    are ``declared_queues()``; ``settings.ARAGORA_QUEUE_MAX_DEPTHS`` gives per-queue limits.

    Raises:
        ImproperlyConfigured: a key is unknown, or a value is malformed or out of range; the
            message names the environment variable that set it.
    """
    values = {"redis_url": settings.REDIS_URL, **settings.ARAGORA_QUEUE}
    unknown = sorted(values.keys() - ENV_VARS.keys())
    if unknown:
        raise ImproperlyConfigured(f"ARAGORA_QUEUE has unknown keys: {', '.join(unknown)}")
    values["webhook_secret_keys"] = ",".join(webhook_secret_keys())
    values["webhook_allow_private"] = str(bool(settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE))
    environ = {ENV_VARS[name]: str(raw) for name, raw in values.items() if raw is not None}
    try:
        config = QueueConfig.from_env(environ)
    except ConfigError as exc:
        # Values are not echoed: REDIS_URL may carry a password.
        raise ImproperlyConfigured(f"{_culprit(environ)} is invalid: {exc}") from exc
    for setting, changes in (
        ("ARAGORA_QUEUES", {"queues": declared_queues()}),
        ("ARAGORA_QUEUE_MAX_DEPTHS", {"max_depths": settings.ARAGORA_QUEUE_MAX_DEPTHS}),
    ):
        try:
            config = dataclasses.replace(config, **changes)
        except ConfigError as exc:
            raise ImproperlyConfigured(f"{setting} is invalid: {exc}") from exc
    return config


def declared_queues() -> frozenset[str]:
    """Return the queues jobs may be enqueued on: the worker kinds' queues, the ``TASKS``
    queues and ``settings.ARAGORA_QUEUES``."""
    # A TASKS queue name Redis cannot hold is the backend's system check error, not this one's.
    tasks = [name for name in task_queue_names() if valid_queue_name(name)]
    return frozenset({*WORKER_KIND_CLASSES, *tasks, *settings.ARAGORA_QUEUES})


def webhook_secret_keys() -> tuple[str, ...]:
    """Return the Fernet keys of webhook secrets: ``ARAGORA_WEBHOOK_SECRET_KEYS``, newest first.

    Without any, one key derived from ``SECRET_KEY`` (so development needs no setup; rotating
    ``SECRET_KEY`` then makes stored secrets unreadable, hence system check ``aragora.W002``).
    """
    keys = tuple(settings.ARAGORA_WEBHOOK_SECRET_KEYS)
    if keys:
        return keys
    digest = hmac.new(
        str(settings.SECRET_KEY).encode(), b"aragora webhook secrets", hashlib.sha256
    ).digest()
    return (base64.urlsafe_b64encode(digest).decode("ascii"),)


def _culprit(environ: dict[str, str]) -> str:
    """Return the variable that fails on its own (the library's checks are per field)."""
    for var, raw in environ.items():
        try:
            QueueConfig.from_env({var: raw})
        except ConfigError:
            return var
    return "REDIS_URL or an ARAGORA_QUEUE_* variable"
