"""Example ``django.tasks`` tasks (README, "django.tasks"); the tests enqueue them too."""

from __future__ import annotations

import asyncio
from typing import Any

from django.tasks import TaskContext, task


@task
def add(a: float, b: float) -> float:
    """Return ``a + b``."""
    return a + b


@task
async def greet(name: str, delay: float = 0.0) -> str:
    """Return a greeting after ``delay`` seconds (an async task runs on the worker's loop)."""
    await asyncio.sleep(delay)
    return f"Hello, {name}!"


@task(takes_context=True)
def describe_attempt(context: TaskContext, note: str = "") -> dict[str, Any]:
    """Return the result id and attempt number the task sees in its context."""
    return {"id": context.task_result.id, "attempt": context.attempt, "note": note}


@task
def require_positive(number: float) -> float:
    """Return ``number``, or fail for good (``ValueError`` is never retried) when it is not > 0."""
    if number <= 0:
        raise ValueError(f"{number} is not positive")
    return number


@task
def divide(a: float, b: float) -> float:
    """Return ``a / b`` (``ZeroDivisionError`` is retryable: runs again while attempts remain)."""
    return a / b
