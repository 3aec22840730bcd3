"""Composition root: the only module that names concrete queue, worker and middleware classes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from django.conf import settings

from queue_app.queue import QueueConfig, get_queue_config
from queue_app.queue.redis import RedisStreamsQueue, WorkerRegistry, create_redis_queue
from queue_app.stores.endpoints import DjangoEndpointStore
from queue_app.tasks.backend import task_queue_names
from queue_app.tasks.runner import tasks_kind
from workers import (
    WORKER_KINDS,
    BaseWorker,
    KindOptions,
    LoggingMiddleware,
    Middleware,
    MiddlewareChain,
    TracingMiddleware,
    WorkerKind,
    WorkerOptions,
)
from workers.runtime import Handler


class UnknownQueue(ValueError):
    """No worker kind serves that queue."""


def worker_middleware() -> list[Middleware]:
    """Return the worker middleware, outermost first: tracing, logging, then metrics."""
    chain: list[Middleware] = [TracingMiddleware(), LoggingMiddleware()]
    try:
        from workers.metrics import MetricsMiddleware
    except ImportError:
        return chain
    return [*chain, MetricsMiddleware()]


async def build_queue(consumer_name: str, config: QueueConfig | None = None) -> RedisStreamsQueue:
    """Connect a queue for ``consumer_name`` (raises QueueConnectionError when Redis is down)."""
    return await create_redis_queue(consumer_name=consumer_name, config=config)


def worker_kinds() -> dict[str, Callable[[KindOptions], Awaitable[WorkerKind]]]:
    """Return the worker kinds by queue name: ``WORKER_KINDS`` and the django.tasks queues."""
    return {**dict.fromkeys(task_queue_names(), tasks_kind), **WORKER_KINDS}


async def build_kind(queues: Sequence[str]) -> WorkerKind:
    """Merge the worker kinds that serve ``queues`` into one set of handlers and closers."""
    options = KindOptions(
        executor_path=settings.ARAGORA_DEBATE_EXECUTOR,
        webhook_allow_private=settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE,
        endpoint_store=DjangoEndpointStore(),
    )
    handlers: dict[str, Handler] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    kinds = worker_kinds()
    for name in queues:
        factory = kinds.get(name)
        if factory is None:
            known = ", ".join(sorted(kinds))
            raise UnknownQueue(f"no worker kind serves queue {name!r} (known: {known})")
        kind = await factory(options)
        handlers.update(kind.handlers)
        closers.extend(kind.closers)
    return WorkerKind(handlers, tuple(closers))


async def build_worker(options: WorkerOptions, config: QueueConfig | None = None) -> BaseWorker:
    """Build a worker for ``options`` with its handlers, middleware and registry."""
    config = config or get_queue_config()
    kind = await build_kind(options.queues)
    queue = await build_queue(options.worker_id, config)
    return BaseWorker(
        queue,
        kind.handlers,
        options,
        middleware=MiddlewareChain(worker_middleware()),
        registry=WorkerRegistry(queue.redis, config),
        closers=kind.closers,
    )
