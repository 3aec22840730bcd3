"""This project's ``django.tasks`` path: the benchmark ``@task`` and its producer.

``manage.py queue_worker --queues tasks`` runs the task (this module is importable there
through ``PYTHONPATH=bench``); the producer calls ``task.enqueue()``, Django's own API.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aragora_site.settings")
django.setup()  # @task validates against the configured backend when it decorates

from django.tasks import task  # noqa: E402

from peers import shape  # noqa: E402


@task
async def job(sent: float) -> None:
    """Do the benchmark job's work."""
    await shape.arecord(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``Task.enqueue`` (sync, as a Django view would call it)."""
    yield job.enqueue
