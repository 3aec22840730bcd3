"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints for load balancers and probes."""

from __future__ import annotations

import time

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from queue_app.observability.queue_gauges import run_coroutine
from queue_app.queue import QueueConnectionError, get_queue_config
from queue_app.queue.redis.observe import connect, ping

#: Once every migration is applied, the (costly) migration graph is checked again this late.
MIGRATIONS_RECHECK_SECONDS = 60.0
_migrations_ok_until = 0.0


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the web process is up; no dependency is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when Redis and the database answer and every migration is applied, else 503."""
    checks = {"redis": _redis(), "database": _database()}
    checks["migrations"] = _migrations() if checks["database"] == "ok" else "unknown"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)


def _redis() -> str:
    async def check() -> None:
        async with connect(get_queue_config()) as client:
            await ping(client)

    try:
        run_coroutine(check())
    except QueueConnectionError as error:
        # The message names the error class only: the URL may carry a password.
        return str(error)
    return "ok"


def _database() -> str:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _migrations() -> str:
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return "ok"
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        return f"unreadable ({type(error).__name__})"
    if unapplied:
        return f"{len(unapplied)} unapplied"
    _migrations_ok_until = time.monotonic() + MIGRATIONS_RECHECK_SECONDS
    return "ok"
