"""WebhookDeliveryWorker: the worker of the ``webhooks`` queue, one event to one endpoint a job."""

from __future__ import annotations

from typing import ClassVar

from queue_app.queue import ConfigError, JobQueue, RetryPolicy

from ..runtime import BaseWorker, KindContext, MiddlewareChain, Registry, WorkerOptions
from .delivery import DeliveryOptions, WebhookDeliverer
from .events import WEBHOOK_JOB_TYPE, WEBHOOKS_QUEUE
from .store import EndpointStore


class WebhookDeliveryWorker(BaseWorker):
    """Worker for the ``webhooks`` queue: each job delivers one event to one endpoint."""

    QUEUE_NAME: ClassVar[str] = WEBHOOKS_QUEUE

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        max_concurrent: int = 10,
        request_timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        *,
        store: EndpointStore,
        options: DeliveryOptions | None = None,
        queues: tuple[str, ...] = (WEBHOOKS_QUEUE,),
        middleware: MiddlewareChain | None = None,
        registry: Registry | None = None,
        shutdown_timeout: float = 30.0,
        burst: bool = False,
    ) -> None:
        self.deliverer = WebhookDeliverer(
            store, options or DeliveryOptions(read_timeout=request_timeout)
        )
        super().__init__(
            queue,
            {WEBHOOK_JOB_TYPE: self.deliverer},
            WorkerOptions(
                worker_id=worker_id,
                queues=queues,
                max_concurrent=max_concurrent,
                shutdown_timeout=shutdown_timeout,
                burst=burst,
            ),
            retry_policy=retry_policy,
            middleware=middleware,
            registry=registry,
            closers=(self.deliverer.aclose,),
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> WebhookDeliveryWorker:
        """Build the worker over the endpoint store of ``context``."""
        if context.endpoint_store is None:
            raise ConfigError("the webhooks queue needs KindContext.endpoint_store")
        return cls(
            queue,
            options.worker_id,
            options.max_concurrent,
            store=context.endpoint_store,
            options=DeliveryOptions(allow_private=context.webhook_allow_private),
            queues=options.queues,
            middleware=context.middleware,
            registry=context.registry,
            shutdown_timeout=options.shutdown_timeout,
            burst=options.burst,
        )
