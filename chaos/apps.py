"""The chaos app: shortens the retention of finished jobs for the run."""

from __future__ import annotations

import dataclasses

from django.apps import AppConfig
from django.conf import settings

from queue_app.queue import get_queue_config, set_queue_config


class ChaosConfig(AppConfig):
    """Install ``CHAOS_RETENTION_SECONDS`` as the queue's retention (after ``queue_app``)."""

    name = "chaos"

    def ready(self) -> None:
        """Replace the queue config of this process with one of short retention."""
        config = get_queue_config()
        retention = int(settings.CHAOS_RETENTION_SECONDS)
        set_queue_config(dataclasses.replace(config, retention_seconds=retention))
