"""What the composition root hands a worker kind: shared runtime objects and kind settings.

Each worker kind is a ``BaseWorker`` subclass (``DebateWorker``, ``WebhookDeliveryWorker``, ...)
with the constructor of the reference API and a ``build`` class method. ``queue_worker`` builds
every kind through ``build``, so tests that build a kind the same way run the object production
runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from queue_app.queue import JobQueue

from .maintenance import Registry
from .middleware import MiddlewareChain
from .worker import BaseWorker, WorkerOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class KindContext:
    """Objects and settings a worker kind may need to build itself."""

    #: The production middleware chain (tracing, logging, metrics).
    middleware: MiddlewareChain = field(default_factory=MiddlewareChain)
    #: Where the worker registers itself (None: it does not).
    registry: Registry | None = None
    #: Dotted path of a debate executor factory (None: the default executor).
    executor_path: str | None = None
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

    def runtime_arguments(self, options: WorkerOptions) -> dict[str, Any]:
        """Return the keyword arguments every kind's constructor passes on to the runtime."""
        return {
            "queues": options.queues,
            "middleware": self.middleware,
            "registry": self.registry,
            "shutdown_timeout": options.shutdown_timeout,
            "burst": options.burst,
        }


class WorkerKind(Protocol):
    """A worker class the composition root can build (``type[DebateWorker]``, ...)."""

    QUEUE_NAME: str

    async def build(
        self, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> BaseWorker:
        """Return the worker of this kind for ``options``."""
        ...
