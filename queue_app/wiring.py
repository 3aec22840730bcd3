"""Composition root: the only module that names concrete queue, worker and store classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from queue_app.queue import JobQueue, QueueConfig
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


@dataclass(frozen=True, slots=True)
class WithCollaborators:
    """A worker kind whose ``build`` also receives Django-side collaborators (stores, settings).

    ``collaborators`` is called at build time, so that settings changed since import count.
    """

    kind: Any
    collaborators: Callable[[], dict[str, Any]]

    @property
    def QUEUE_NAME(self) -> str:
        """Return the queue of the wrapped kind."""
        return str(self.kind.QUEUE_NAME)

    async def build(
        self, queue: RedisStreamsQueue, options: WorkerOptions, context: KindContext
    ) -> BaseWorker:
        """Build the wrapped kind with its collaborators."""
        worker: BaseWorker = await self.kind.build(queue, options, context, **self.collaborators())
        return worker


def batch_collaborators() -> dict[str, Any]:
    """Return what the batch kind needs from Django: the ledger and the generator setting."""
    return {
        "history": LedgerDebateHistory(),
        "generator_path": settings.ARAGORA_EXPLAIN_GENERATOR,
    }


def healing_collaborators() -> dict[str, Any]:
    """Return what the consensus healing kind needs from Django: the store and its settings."""
    return {
        "store": DjangoHealingStore(),
        "config": HealingConfig.from_env(settings.ARAGORA_HEALING_ENV),
    }


def install_healing_defaults() -> None:
    """Give ``get_consensus_healing_worker()`` of this process the Django store and settings."""
    configure_consensus_healing(**healing_collaborators())


#: The kinds that also receive Django-side collaborators, by queue.
COLLABORATORS: dict[str, Callable[[], dict[str, Any]]] = {
    "batch_explainability": batch_collaborators,
    "consensus_healing": healing_collaborators,
}


def kind_of(queue: str) -> WorkerKind:
    """Return the worker kind serving ``queue``, importing that kind only.

    A worker kind's queue is served by it (wrapped in ``WithCollaborators`` when it needs
    Django-side collaborators), a django.tasks queue by ``TaskWorker``.

    Raises:
        UnknownQueue: no worker kind serves ``queue``.
    """
    if queue in WORKER_KIND_CLASSES:
        kind = worker_kind(queue)
        collaborators = COLLABORATORS.get(queue)
        return kind if collaborators is None else WithCollaborators(kind, collaborators)
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
    """Return the production context of worker kinds: middleware, stores and settings."""
    return KindContext(
        middleware=MiddlewareChain(worker_middleware(queue)),
        registry=registry,
        executor_path=settings.ARAGORA_DEBATE_EXECUTOR,
        agent_env=settings.ARAGORA_AGENT_ENV,
        webhook_allow_private=settings.ARAGORA_WEBHOOK_ALLOW_PRIVATE,
        endpoint_store=DjangoEndpointStore(),
        transcription=TranscriptionConfig(**settings.ARAGORA_TRANSCRIPTION),
        event_sink=DjangoEventSink(),
        routing=RoutingConfig(**settings.ARAGORA_ROUTING),
        route_store=DjangoRouteStore(),
    )


async def build_kind(kind: WorkerKind, options: WorkerOptions, config: QueueConfig) -> BaseWorker:
    """Build the worker of ``kind`` exactly as ``queue_worker`` runs it, on its own client."""
    queue = await build_queue(options.worker_id, config)
    try:
        context = kind_context(WorkerRegistry(queue.redis, config), queue)
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
