"""Composition root: the only module that names concrete queue, worker and store classes."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from queue_app.queue import JobQueue, QueueConfig
from queue_app.queue.payloads import DEBATE_QUEUE
from queue_app.queue.redis import RedisStreamsQueue, WorkerRegistry, create_redis_queue
from queue_app.stores.debate_history import LedgerDebateHistory
from queue_app.stores.endpoints import DjangoEndpointStore
from queue_app.stores.healing import DjangoHealingStore
from queue_app.stores.job_events import DjangoEventSink
from queue_app.stores.routes import DjangoRouteStore
from queue_app.tasks.backend import task_queue_names
from queue_app.tasks.runner import TaskWorker
from workers import (
    WORKER_KIND_CLASSES,
    BaseWorker,
    HealingConfig,
    KindContext,
    LoggingMiddleware,
    Middleware,
    MiddlewareChain,
    TracingMiddleware,
    WorkerGroup,
    WorkerKind,
    WorkerOptions,
    worker_kind,
)
from workers.healing import configure_consensus_healing
from workers.metrics import MetricsMiddleware
from workers.routing import OriginRoutingMiddleware, RoutingConfig
from workers.transcription import TranscriptionConfig


class UnknownQueue(ValueError):
    """No worker kind serves that queue."""


def worker_middleware(queue: JobQueue | None = None) -> list[Middleware]:
    """Return the worker middleware, outermost first: tracing, logging, then metrics.

    With the worker's ``queue``, finished debates that have an origin get their result routed
    (``OriginRoutingMiddleware``, innermost).
    """
    chain: list[Middleware] = [TracingMiddleware(), LoggingMiddleware(), MetricsMiddleware()]
    if queue is not None:
        chain.append(OriginRoutingMiddleware(queue))
    return chain


async def build_queue(consumer_name: str, config: QueueConfig) -> RedisStreamsQueue:
    """Connect a queue for ``consumer_name`` (raises QueueConnectionError when Redis is down)."""
    return await create_redis_queue(consumer_name=consumer_name, config=config)


def healing_config() -> HealingConfig:
    """Return the settings of the consensus healing kind (``ARAGORA_HEALING_*``)."""
    return HealingConfig.from_env(settings.ARAGORA_HEALING_ENV)


def install_healing_defaults() -> None:
    """Give ``get_consensus_healing_worker()`` of this process the Django store and settings."""
    configure_consensus_healing(DjangoHealingStore(), healing_config())


def kind_of(queue: str) -> WorkerKind:
    """Return the worker kind serving ``queue``, importing that kind only.

    A worker kind's queue is served by that kind, a django.tasks queue by ``TaskWorker``.

    Raises:
        UnknownQueue: no worker kind serves ``queue``.
    """
    if queue in WORKER_KIND_CLASSES:
        return worker_kind(queue)
    if queue in task_queue_names():
        return TaskWorker
    known = ", ".join(sorted({*WORKER_KIND_CLASSES, *task_queue_names()}))
    raise UnknownQueue(f"no worker kind serves queue {queue!r} (known: {known})")


def worker_kinds() -> dict[str, WorkerKind]:
    """Return the worker kind of every queue (importing every kind): kinds and tasks queues."""
    return {queue: kind_of(queue) for queue in sorted({*WORKER_KIND_CLASSES, *task_queue_names()})}


def kinds_of(queues: Sequence[str]) -> list[tuple[WorkerKind, tuple[str, ...]]]:
    """Group ``queues`` by the worker kind serving them, in the order first named.

    Raises:
        UnknownQueue: a queue no worker kind serves.
    """
    grouped: dict[WorkerKind, list[str]] = {}
    for name in queues:
        grouped.setdefault(kind_of(name), []).append(name)
    return [(kind, tuple(names)) for kind, names in grouped.items()]


def kind_context(
    registry: WorkerRegistry | None = None, queue: JobQueue | None = None
) -> KindContext:
    """Return the production context of worker kinds: middleware, stores and settings.

    It is built when workers are built, so that settings changed since import count.
    """
    return KindContext(
        middleware=MiddlewareChain(worker_middleware(queue)),
        registry=registry,
        executor_path=settings.ARAGORA_DEBATE_EXECUTOR,
        explain_generator_path=settings.ARAGORA_EXPLAIN_GENERATOR,
        debate_history=LedgerDebateHistory(),
        agent_env=settings.ARAGORA_AGENT_ENV,
        webhook_allow_private=settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE,
        endpoint_store=DjangoEndpointStore(),
        transcription=TranscriptionConfig(**settings.ARAGORA_TRANSCRIPTION),
        event_sink=DjangoEventSink(),
        routing=RoutingConfig(**settings.ARAGORA_ROUTING),
        route_store=DjangoRouteStore(),
        healing=healing_config(),
        healing_store=DjangoHealingStore(),
    )


async def build_kind(kind: WorkerKind, options: WorkerOptions, config: QueueConfig) -> BaseWorker:
    """Build the worker of ``kind`` exactly as ``queue_worker`` runs it, on its own client."""
    queue = await build_queue(options.worker_id, config)
    try:
        # Only debates have results to route: other kinds run without the routing layer.
        routed = queue if kind.QUEUE_NAME == DEBATE_QUEUE else None
        context = kind_context(WorkerRegistry(queue.redis, config), routed)
        return await kind.build(queue, options, context)
    except BaseException:
        await queue.close()
        raise


async def build_workers(options: WorkerOptions, config: QueueConfig) -> WorkerGroup:
    """Build one worker per kind serving ``options.queues``, as one group.

    With one kind the worker keeps ``options.worker_id``; with several each gets
    ``<worker_id>/<kind queue>`` (each is its own Redis consumer and registry entry).
    """
    kinds = kinds_of(options.queues)
    workers: list[BaseWorker] = []
    try:
        for kind, queues in kinds:
            worker_id = options.worker_id if len(kinds) == 1 else f"{options.worker_id}/{queues[0]}"
            kind_options = WorkerOptions(
                worker_id=worker_id,
                queues=queues,
                max_concurrent=options.max_concurrent,
                shutdown_timeout=options.shutdown_timeout,
                burst=options.burst,
            )
            workers.append(await build_kind(kind, kind_options, config))
    except BaseException:
        for worker in workers:
            await worker.queue.close()
        raise
    return WorkerGroup(workers)
