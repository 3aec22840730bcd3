"""Django app of the job queue."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed

from queue_app.conf import build_config
from queue_app.observability.queue_gauges import register_queue_collector
from queue_app.queue.config import set_queue_config
from queue_app.queue.errors import ConfigError

#: Settings that build_config() reads.
_QUEUE_SETTINGS = frozenset(
    {
        "REDIS_URL",
        "ARAGORA_QUEUE",
        "ARAGORA_QUEUES",
        "ARAGORA_QUEUE_MAX_DEPTHS",
        "TASKS",
        "ARAGORA_WEBHOOK_SECRET_KEYS",
        "ARAGORA_WEBHOOK_ALLOW_PRIVATE",
        "SECRET_KEY",
    }
)


class QueueAppConfig(AppConfig):
    """Install the queue config built from Django settings, and keep it in step with them."""

    name = "queue_app"
    verbose_name = "Job queue"

    def ready(self) -> None:
        """Install the queue config and rebuild it whenever a queue setting is overridden."""
        from queue_app import checks  # noqa: F401  registers the system checks

        set_queue_config(build_config())
        setting_changed.connect(_rebuild_config, dispatch_uid="queue_app.rebuild_config")
        # Queue gauges on the /metrics that django-prometheus serves (read at scrape time).
        register_queue_collector()
        # start_consensus_healing() in this process heals through the ledger.
        from queue_app.wiring import install_healing_defaults

        try:
            install_healing_defaults()
        except ConfigError:
            # A bad ARAGORA_HEALING_* value: the system check aragora.E008 names it (manage.py
            # check, queue_worker at start), instead of a traceback from every command here.
            return


def _rebuild_config(*, setting: str, **kwargs: Any) -> None:
    if setting in _QUEUE_SETTINGS:
        set_queue_config(build_config())
