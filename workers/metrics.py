"""Worker-side Prometheus metrics, the middleware that feeds them, and the worker's HTTP endpoint.

Every metric lives in ``REGISTRY`` (with the process, platform and GC collectors), served by
``serve_metrics`` on ``queue_worker --metrics-port``. Labels have bounded values: ``queue``
(queues the worker reads), ``job_type`` (handler names; past ``MAX_LABEL_SETS`` pairs they
become ``other``), ``reason``, ``outcome`` and ``endpoint`` (webhook endpoint names). No job ids,
no URLs.

| metric                                      | type      | labels          |
|---------------------------------------------|-----------|-----------------|
| `aragora_queue_jobs_started_total`          | counter   | queue, job_type |
| `aragora_queue_jobs_completed_total`        | counter   | queue, job_type |
| `aragora_queue_jobs_failed_total`           | counter   | queue, job_type |
| `aragora_queue_jobs_retried_total`          | counter   | queue, job_type |
| `aragora_queue_jobs_cancelled_total`        | counter   | queue, job_type |
| `aragora_queue_job_duration_seconds`        | histogram | queue, job_type |
| `aragora_queue_job_wait_seconds`            | histogram | queue, job_type |
| `aragora_queue_active_jobs`                 | gauge     | queue           |
| `aragora_queue_stale_claims_total`          | counter   |                 |
| `aragora_queue_dead_letters_total`          | counter   | queue, reason   |
| `aragora_queue_redis_reconnects_total`      | counter   |                 |
| `aragora_queue_webhook_deliveries_total`    | counter   | outcome         |
| `aragora_queue_webhook_circuit_state`       | gauge     | endpoint        |
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder

from queue_app.queue import Job, QueueConnectionError
from queue_app.queue.redis.observe import ping

from .middleware import CallNext, Middleware

if TYPE_CHECKING:
    from .runtime import BaseWorker

logger = logging.getLogger(__name__)

#: Seconds a probe client may take to send its request, and a readiness ping to answer.
READ_TIMEOUT = 2.0
MAX_HEADERS = 100

#: Registry served on the worker's metrics port (the web's queue gauges never leak into it).
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

#: Distinct (queue, job_type) label pairs before new job types are counted as ``other``.
MAX_LABEL_SETS = 200
#: Buckets in seconds, from a no-op job to an hour-long debate.
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
DURATION_BUCKETS += (10, 30, 60, 120, 300, 600, 1800, 3600)
#: Circuit breaker states as gauge values.
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}

_JOB = ("queue", "job_type")

JOBS_STARTED = Counter(
    "aragora_queue_jobs_started", "Job attempts started.", _JOB, registry=REGISTRY
)
JOBS_COMPLETED = Counter(
    "aragora_queue_jobs_completed",
    "Jobs completed (outcome recorded in Redis).",
    _JOB,
    registry=REGISTRY,
)
JOBS_FAILED = Counter(
    "aragora_queue_jobs_failed",
    "Jobs failed for good (moved to dead letters).",
    _JOB,
    registry=REGISTRY,
)
JOBS_RETRIED = Counter(
    "aragora_queue_jobs_retried",
    "Attempts that failed and were scheduled for a retry.",
    _JOB,
    registry=REGISTRY,
)
JOBS_CANCELLED = Counter(
    "aragora_queue_jobs_cancelled",
    "Running jobs cancelled cooperatively.",
    _JOB,
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "aragora_queue_job_duration_seconds",
    "Run time of one attempt, handler plus middleware.",
    _JOB,
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
JOB_WAIT = Histogram(
    "aragora_queue_job_wait_seconds",
    "Time from enqueue to the start of the first attempt (includes any requested delay).",
    _JOB,
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
ACTIVE_JOBS = Gauge(
    "aragora_queue_active_jobs",
    "Jobs running in this worker now.",
    ("queue",),
    registry=REGISTRY,
)
STALE_CLAIMS = Counter(
    "aragora_queue_stale_claims",
    "Deliveries taken over from dead or hung workers.",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "aragora_queue_dead_letters",
    "Jobs this worker moved to dead letters: reason failed (final failure) or poison "
    "(undecodable entry or delivered more than max_attempts times).",
    ("queue", "reason"),
    registry=REGISTRY,
)
REDIS_RECONNECTS = Counter(
    "aragora_queue_redis_reconnects",
    "Redis connections restored after an outage.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "aragora_queue_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retry, failed, circuit_open, refused.",
    ("outcome",),
    registry=REGISTRY,
)
CIRCUIT_STATE = Gauge(
    "aragora_queue_webhook_circuit_state",
    "Circuit breaker state per webhook endpoint: 0 closed, 1 half-open, 2 open.",
    ("endpoint",),
    registry=REGISTRY,
)


@dataclass(frozen=True, slots=True)
class _Children:
    """Labelled children of one (queue, job_type) pair, bound once: the per-job path is cheap."""

    started: Any
    wait: Any
    duration: Any
    active: Any
    outcomes: dict[str, Any]
    dead_letters: Any

    @classmethod
    def bind(cls, queue: str, job_type: str) -> _Children:
        outcomes = {
            "completed": JOBS_COMPLETED.labels(queue, job_type),
            "failed": JOBS_FAILED.labels(queue, job_type),
            "retried": JOBS_RETRIED.labels(queue, job_type),
            "cancelled": JOBS_CANCELLED.labels(queue, job_type),
        }
        return cls(
            started=JOBS_STARTED.labels(queue, job_type),
            wait=JOB_WAIT.labels(queue, job_type),
            duration=JOB_DURATION.labels(queue, job_type),
            active=ACTIVE_JOBS.labels(queue),
            outcomes=outcomes,
            dead_letters=DEAD_LETTERS.labels(queue, "failed"),
        )


class MetricsMiddleware(Middleware):
    """Count attempts and outcomes, time them, and track running jobs, per queue and job type."""

    def __init__(self) -> None:
        self._children: dict[tuple[str | None, str], _Children] = {}

    def _bound(self, job: Job) -> _Children:
        key = (job.queue, job.job_type)
        children = self._children.get(key)
        if children is None:
            job_type = key[1] if len(self._children) < MAX_LABEL_SETS else "other"
            children = _Children.bind(key[0] or "", job_type)
            self._children[key] = children
        return children

    async def wrap_job(self, job: Job, call_next: CallNext) -> Any:
        """Count the start, observe the queue wait of first attempts, track the running job."""
        children = self._bound(job)
        children.started.inc()
        if job.attempts <= 1 and job.started_at:
            children.wait.observe(max(0.0, job.started_at - job.created_at))
        children.active.inc()
        try:
            return await call_next(job)
        finally:
            children.active.dec()

    def on_outcome(
        self, job: Job, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        """Count the recorded outcome and observe the attempt's duration."""
        if outcome == "abandoned":  # left unacknowledged at shutdown: another worker runs it
            return
        children = self._bound(job)
        counter = children.outcomes.get(outcome)
        if counter is not None:
            counter.inc()
        children.duration.observe(duration)
        if outcome == "failed":  # the failing step is the one that dead-letters the job
            children.dead_letters.inc()

    def on_claim(self, count: int) -> None:
        """Count deliveries taken over from dead workers."""
        STALE_CLAIMS.inc(count)

    def on_dead_letter(self, count: int, queue: str) -> None:
        """Count entries dead-lettered while reading (undecodable, too many deliveries)."""
        DEAD_LETTERS.labels(queue, "poison").inc(count)

    def on_reconnect(self) -> None:
        """Count a restored Redis connection."""
        REDIS_RECONNECTS.inc()


def record_webhook_delivery(outcome: str) -> None:
    """Count one webhook delivery attempt (for webhook worker kinds)."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def set_circuit_state(endpoint: str, state: str) -> None:
    """Publish the circuit breaker state (``closed``, ``half_open``, ``open``) of an endpoint."""
    CIRCUIT_STATE.labels(endpoint).set(CIRCUIT_STATES[state])


def serve_metrics(port: int, worker: BaseWorker, host: str = "0.0.0.0") -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``worker`` on the running event loop.

    The port is bound before this returns (``OSError`` when it is taken). Requests are answered
    on the worker's loop, so ``/readyz`` pings Redis through the worker's own queue client.
    """
    server = MetricsServer(worker, REGISTRY)
    server.start(host, port)
    return server


class MetricsServer:
    """A tiny HTTP/1.1 server (one request per connection) for Prometheus and probes."""

    #: Servers started in this process: the loop only keeps weak references to tasks.
    running: ClassVar[set[MetricsServer]] = set()

    def __init__(self, worker: BaseWorker, registry: CollectorRegistry) -> None:
        self.worker = worker
        self.registry = registry
        self.port = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` now and serve from the running loop until ``close()``."""
        loop = asyncio.get_running_loop()
        sock = socket.create_server((host, port), reuse_port=False)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._task = loop.create_task(self._serve(sock), name=f"metrics-{self.port}")
        MetricsServer.running.add(self)
        logger.info("worker metrics on http://%s:%d/metrics", host, self.port)

    async def close(self) -> None:
        """Stop serving."""
        MetricsServer.running.discard(self)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _serve(self, sock: socket.socket) -> None:
        server = await asyncio.start_server(self._handle, sock=sock)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            status, content_type, body = await self.respond(method, path, headers)
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError):
            pass  # a broken or slow client: just close
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def respond(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        """Return status, content type and body for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        route = path.split("?", 1)[0]
        if route == "/metrics":
            encoder, content_type = choose_encoder(headers.get("accept", ""))
            body = await asyncio.to_thread(encoder, self.registry)
            return 200, content_type, body
        if route == "/healthz":
            return _json(200, {"status": "ok"})
        if route == "/readyz":
            checks = {"redis": await self._redis_check(), "worker": self._worker_check()}
            ready = all(value == "ok" for value in checks.values())
            return _json(
                200 if ready else 503,
                {"status": "ok" if ready else "unavailable", "checks": checks},
            )
        return 404, "text/plain; charset=utf-8", b"not found\n"

    async def _redis_check(self) -> str:
        try:
            await asyncio.wait_for(ping(self.worker.queue.redis), READ_TIMEOUT)
        except (TimeoutError, QueueConnectionError) as error:
            return f"unreachable ({type(error).__name__})"
        return "ok"

    def _worker_check(self) -> str:
        return "ok" if self.worker.is_running else "not running"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """Read the request line and headers; the body (none for GET) is ignored."""
    method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while len(headers) < MAX_HEADERS:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _json(status: int, document: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document).encode() + b"\n"
