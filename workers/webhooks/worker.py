"""WebhookDeliveryWorker: the worker of the ``webhook_delivery`` queue, one event a job."""

from __future__ import annotations

from typing import Any, ClassVar, Unpack

from queue_app.queue import JobQueue, RetryPolicy

from ..runtime import KindContext, KindWorker, RuntimeArguments, WorkerOptions
from .circuit import CircuitPolicy
from .delivery import DeliveryOptions, WebhookDeliverer
from .events import WEBHOOK_JOB_TYPE, WEBHOOKS_QUEUE
from .health import EndpointHealth, HealthBook
from .redis_store import RedisEndpointStore
from .store import EndpointStore


class WebhookDeliveryWorker(KindWorker):
    """Worker for the ``webhook_delivery`` queue: each job delivers one event to one endpoint.

    Built as the reference builds it (``WebhookDeliveryWorker(queue, worker_id)``), it delivers
    to endpoints registered by ``enqueue_webhook_delivery`` in the queue's records; under
    ``queue_worker`` its ``store`` is the database's and registered endpoints work too.
    """

    QUEUE_NAME: ClassVar[str] = WEBHOOKS_QUEUE
    #: Jobs at once without ``--concurrency`` (README): deliveries wait on the endpoints' replies.
    DEFAULT_CONCURRENCY: ClassVar[int] = 50
    #: Attempts of a delivery (the job's ``max_attempts`` unless it sets another).
    MAX_RETRIES: ClassVar[int] = 5
    INITIAL_BACKOFF_SECONDS: ClassVar[float] = 1.0
    MAX_BACKOFF_SECONDS: ClassVar[float] = 60.0
    BACKOFF_MULTIPLIER: ClassVar[float] = 2.0
    #: Failures in a row that open an endpoint's circuit, and seconds before it tries again.
    CIRCUIT_FAILURE_THRESHOLD: ClassVar[int] = 5
    CIRCUIT_RESET_TIMEOUT: ClassVar[float] = 60.0

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        max_concurrent: int = 10,
        request_timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        *,
        store: EndpointStore | None = None,
        options: DeliveryOptions | None = None,
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.health = HealthBook()
        registered = RedisEndpointStore.of_queue(queue)
        self.deliverer = WebhookDeliverer(
            store or registered,
            options or self.default_options(request_timeout, queue.config.webhook_allow_private),
            registered=registered,
            on_result=self.health.record,
        )
        super().__init__(
            queue,
            {WEBHOOK_JOB_TYPE: self.deliverer},
            worker_id,
            max_concurrent,
            retry_policy=retry_policy or self.default_retry_policy(),
            closers=(self.deliverer.aclose,),
            **runtime,
        )

    @classmethod
    def default_retry_policy(cls) -> RetryPolicy:
        """Return the backoff of the class constants (1, 2, 4, ... s up to 60 s, jittered)."""
        return RetryPolicy(
            max_attempts=cls.MAX_RETRIES,
            base_delay_seconds=cls.INITIAL_BACKOFF_SECONDS,
            max_delay_seconds=cls.MAX_BACKOFF_SECONDS,
            exponential_base=cls.BACKOFF_MULTIPLIER,
        )

    @classmethod
    def default_options(
        cls, request_timeout: float = 10.0, allow_private: bool = False
    ) -> DeliveryOptions:
        """Return the delivery options of the class constants and ``request_timeout``."""
        return DeliveryOptions(
            allow_private=allow_private,
            read_timeout=request_timeout,
            circuit=CircuitPolicy(
                failure_threshold=cls.CIRCUIT_FAILURE_THRESHOLD,
                open_seconds=cls.CIRCUIT_RESET_TIMEOUT,
            ),
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> WebhookDeliveryWorker:
        """Build the worker over the endpoint store of ``context`` (the queue's records if none)."""
        return cls(
            queue,
            options.worker_id,
            cls.concurrency(options),
            store=context.endpoint_store,
            options=cls.default_options(allow_private=context.webhook_allow_private),
            **context.runtime_arguments(options),
        )

    def get_stats(self) -> dict[str, Any]:
        """Return the runtime's counters with the reference's delivery counters."""
        return {
            **super().get_stats(),
            **self.health.totals(),
            "active_deliveries": self.active_jobs,
            "endpoints_tracked": len(self.health.by_url),
            "queue_name": self.QUEUE_NAME,
        }

    def get_endpoint_health(self, url: str) -> EndpointHealth | None:
        """Return what this worker saw of deliveries to ``url``, or None."""
        return self.health.by_url.get(url)

    def get_all_endpoint_health(self) -> list[EndpointHealth]:
        """Return the health of every URL this worker delivered to."""
        return list(self.health.by_url.values())
