"""What the composition root hands a worker kind: shared runtime objects and kind settings.

Each worker kind is a ``KindWorker`` subclass (``DebateWorker``, ``WebhookDeliveryWorker``, ...)
with the constructor of the reference API and a ``build`` class method. ``queue_worker`` builds
every kind through ``build``, so tests that build a kind the same way run the object production
runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, Unpack

from queue_app.queue import JobQueue, RetryPolicy

from .maintenance import Registry
from .middleware import MiddlewareChain
from .worker import BaseWorker, Handler, WorkerOptions

#: What a worker awaits once when it closes (an HTTP client's or agent pool's ``aclose``).
Closer = Callable[[], Awaitable[None]]


class RuntimeArguments(TypedDict, total=False):
    """Keyword arguments of every kind's constructor that go to the runtime unchanged."""

    #: Queues read, in the order their jobs are preferred (default: the kind's ``QUEUE_NAME``).
    queues: tuple[str, ...]
    middleware: MiddlewareChain | None
    #: Where the worker registers itself (default: nowhere).
    registry: Registry | None
    #: Seconds ``stop()`` waits for in-flight jobs (default: 30).
    shutdown_timeout: float
    #: Exit once the queues are empty (default: False).
    burst: bool


class KindWorker(BaseWorker):
    """Base of the worker kinds: the reference's arguments, then the runtime's keywords."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        worker_id: str,
        max_concurrent: int,
        *,
        retry_policy: RetryPolicy | None = None,
        closers: Sequence[Closer] = (),
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        unknown = sorted(set(runtime) - RuntimeArguments.__optional_keys__)
        if unknown:  # what an explicit keyword list refused, for callers mypy does not check
            raise TypeError(f"{type(self).__name__}() got unexpected keywords: {unknown}")
        defaults = WorkerOptions(worker_id=worker_id, queues=(self.QUEUE_NAME,))
        options = WorkerOptions(
            worker_id=worker_id,
            queues=runtime.get("queues", defaults.queues),
            max_concurrent=max_concurrent,
            shutdown_timeout=runtime.get("shutdown_timeout", defaults.shutdown_timeout),
            burst=runtime.get("burst", defaults.burst),
        )
        super().__init__(
            queue,
            handlers,
            options,
            retry_policy=retry_policy,
            middleware=runtime.get("middleware"),
            registry=runtime.get("registry"),
            closers=closers,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KindContext:
    """Objects and settings a worker kind may need to build itself."""

    #: The production middleware chain (tracing, logging, metrics).
    middleware: MiddlewareChain = field(default_factory=MiddlewareChain)
    #: Where the worker registers itself (None: it does not).
    registry: Registry | None = None
    #: Dotted path of a debate executor factory (None: the default executor).
    executor_path: str | None = None
    #: Dotted path of an explain generator factory (None: the agents' generator).
    explain_generator_path: str | None = None
    #: Finished debates no longer in Redis: a ``workers.batch.DebateHistory`` (None: none).
    debate_history: Any = None
    #: Provider variables of the agents (``workers.agents.AgentSettings.from_env``).
    agent_env: Mapping[str, str] = field(default_factory=dict)
    #: Deliver webhooks to private, loopback and link-local addresses (development, tests).
    webhook_allow_private: bool = False
    #: Webhook endpoints, circuits and delivery log: a ``workers.webhooks.EndpointStore``
    #: (typed loosely so that the runtime does not depend on one kind).
    endpoint_store: Any = None
    #: Settings of the transcription kind: a ``workers.transcription.TranscriptionConfig``
    #: (None: its defaults).
    transcription: Any = None
    #: Job events to webhook endpoints: a ``workers.transcription.EventSink``.
    event_sink: Any = None
    #: Settings of the routing kind: a ``workers.routing.RoutingConfig`` (None: its defaults).
    routing: Any = None
    #: Delivery log and mail of the routing kind: a ``workers.routing.RouteStore``.
    route_store: Any = None
    #: Settings of the consensus healing kind: a ``workers.healing.HealingConfig``
    #: (None: its defaults).
    healing: Any = None
    #: Debates to heal and healing records: a ``workers.healing.HealingStore`` (the kind
    #: refuses to start without one).
    healing_store: Any = None

    def runtime_arguments(self, options: WorkerOptions) -> RuntimeArguments:
        """Return the runtime's keywords of a kind's constructor under ``options``."""
        return RuntimeArguments(
            queues=options.queues,
            middleware=self.middleware,
            registry=self.registry,
            shutdown_timeout=options.shutdown_timeout,
            burst=options.burst,
        )


class WorkerKind(Protocol):
    """A worker class the composition root can build (``type[DebateWorker]``, ...)."""

    QUEUE_NAME: str

    async def build(
        self, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> BaseWorker:
        """Return the worker of this kind for ``options``."""
        ...
