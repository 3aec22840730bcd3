"""Deliver one webhook event: guard the target, keep a circuit breaker, POST, classify the reply.

The worker reads the job's endpoint (URL, secret, active, event types) through an
``EndpointStore`` (the queue's records for endpoints registered by
``enqueue_webhook_delivery``) and POSTs the body of ``workers.webhooks.events`` signed per
``workers.webhooks.signing``, with ``X-Webhook-ID`` (the endpoint), ``X-Delivery-Attempt``,
``X-Aragora-Event`` and ``traceparent`` of the job's trace.

2xx means delivered; 408, 429, 5xx and transport errors are retried (the worker's backoff, at
least ``Retry-After`` of a 429 or 503 within its cap, up to the job's ``max_attempts``, 5 by
default); any other status fails the job at once, and ``410 Gone`` also deactivates the
endpoint. Hostnames are resolved once and the request goes to the vetted address, so private,
loopback, link-local, multicast and reserved targets are refused unless ``allow_private``.
Each endpoint has a circuit breaker (``workers.webhooks.circuit.CircuitState``): a delivery
meeting an open circuit is deferred, without using up an attempt, until a trial may go.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from opentelemetry import propagate

from queue_app.queue import Job
from queue_app.queue.tracing import TRACE_CONTEXT_KEY

from ..metrics import record_webhook_delivery, set_circuit_state
from ..runtime import Defer
from .circuit import BreakerState, CircuitChange, CircuitPolicy, CircuitState
from .errors import (
    CircuitOpen,
    DeliveryRejected,
    EndpointGone,
    EndpointUnavailable,
    TargetRefused,
    WebhookError,
)
from .events import TEST_EVENT, WebhookPayload
from .health import DeliveryResult
from .redis_store import REGISTRY
from .signing import REFERENCE_SIGNATURE_HEADER, reference_signature, standard_headers
from .store import DeliveryAttempt, EndpointStore, EndpointView
from .targets import parse_target, resolve_target

logger = logging.getLogger(__name__)

#: Bytes of the response body kept in the delivery log.
EXCERPT_BYTES = 1024
#: Resolved addresses tried in turn when connecting fails.
MAX_ADDRESSES = 3
#: Seconds a half-open trial holds its lease beyond the attempt's total timeout.
LEASE_MARGIN_SECONDS = 5.0
USER_AGENT = "Aragora-Webhooks/1.0"
#: Trace headers forwarded to receivers (never baggage, which may carry internal data).
TRACE_HEADERS = ("traceparent", "tracestate")
#: Statuses whose ``Retry-After`` is honoured.
RETRY_AFTER_STATUSES = (429, 503)

#: Told of each attempt that was made: its result and the circuit state it left.
ResultListener = Callable[[DeliveryResult, str], None]


def classify(status_code: int | None) -> str:
    """Return ``delivered`` (2xx), ``retry`` (408, 429, 5xx, no response) or ``failed``."""
    if status_code is None or status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Return the wait a ``Retry-After`` value asks for (seconds or HTTP date), or None."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOptions:
    """How the webhook worker delivers."""

    #: Deliver to private, loopback and link-local addresses (development and tests only).
    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    #: Longest time of one attempt, from DNS to the end of the response excerpt.
    total_timeout: float = 30.0
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from one attempt: a status and body excerpt, or a transport error."""

    status_code: int | None
    excerpt: str = ""
    error: str = ""
    #: Seconds asked for by ``Retry-After`` (429 and 503 only).
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """One job's delivery: its payload, the store that holds its endpoint, and that endpoint."""

    job: Job
    payload: WebhookPayload
    store: EndpointStore
    endpoint: EndpointView


class WebhookDeliverer:
    """The handler of webhook jobs: one HTTP client, the endpoint stores."""

    def __init__(
        self,
        store: EndpointStore,
        options: DeliveryOptions | None = None,
        *,
        registered: EndpointStore | None = None,
        on_result: ResultListener | None = None,
    ) -> None:
        self.store = store
        #: Store of endpoints registered by ``enqueue_webhook_delivery`` (the queue's records).
        self.registered = registered or store
        self.options = options or DeliveryOptions()
        self._on_result = on_result
        connect, read = self.options.connect_timeout, self.options.read_timeout
        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        # No redirects (a 3xx could point anywhere) and no proxies from the environment.
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        self._lease = self.options.total_timeout + LEASE_MARGIN_SECONDS

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def __call__(self, job: Job) -> dict[str, Any]:
        """Deliver the job's event once; raise to have the queue retry or fail the job."""
        target = await self._target(job)
        now = time.time()
        before, _ = await self._change_circuit(target, lambda c: c.admitting(now, self._lease))
        if not before.admits(now):
            error = CircuitOpen(f"circuit of webhook endpoint {target.endpoint.id} is open")
            await self._record(target, "circuit_open", Reply(None, error=str(error)))
            # Wait for the trial without using up an attempt: nothing was sent.
            raise Defer((before.next_attempt_at or now) - now, str(error))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.options.total_timeout):
                reply = await self._post(target)
        except TargetRefused as error:
            await self._record(target, "refused", Reply(None, error=str(error)))
            self._tell(target, Reply(None, error=str(error)), 0.0, before.state)
            raise TargetRefused(f"webhook endpoint {target.endpoint.id}: {error}") from None
        except (httpx.TransportError, TimeoutError, OSError) as error:
            reply = Reply(None, error=f"{type(error).__name__}: {error}"[:500])
        return await self._conclude(target, reply, time.perf_counter() - started)

    async def _target(self, job: Job) -> Target:
        payload = WebhookPayload.from_job(job)
        store = self.registered if payload.registry == REGISTRY else self.store
        if payload.registry not in ("", REGISTRY):
            raise EndpointGone(f"webhook endpoint registry {payload.registry!r} is unknown")
        endpoint = await store.get_endpoint(payload.webhook_id)
        if endpoint is None:
            raise EndpointGone(f"webhook endpoint {payload.webhook_id} not found")
        if not endpoint.is_active:
            raise EndpointGone(f"webhook endpoint {endpoint.id} is inactive")
        if payload.event_type != TEST_EVENT and not endpoint.subscribes(payload.event_type):
            raise EndpointGone(f"webhook endpoint {endpoint.id} does not take this event type")
        # The store's spelling of the id from here on.
        return Target(job, replace(payload, webhook_id=endpoint.id), store, endpoint)

    async def _post(self, target: Target) -> Reply:
        """POST to the vetted addresses of the endpoint's host in turn, until one connects."""
        url = parse_target(target.endpoint.url)
        addresses = await resolve_target(url, self.options.allow_private)
        body = target.payload.body()
        headers = request_headers(target, body, url.netloc.decode("ascii"))
        # TLS still checks the certificate against the host name (SNI), not the address.
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        candidates = [url.copy_with(host=str(address)) for address in addresses[:MAX_ADDRESSES]]
        for candidate in candidates[:-1]:
            with contextlib.suppress(httpx.ConnectError):
                return await self._send(candidate, body, headers, extensions)
        return await self._send(candidates[-1], body, headers, extensions)

    async def _send(
        self, url: httpx.URL, body: bytes, headers: dict[str, str], extensions: dict[str, Any]
    ) -> Reply:
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        response = await self._client.send(request, stream=True)
        try:
            excerpt = bytearray()
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            await response.aclose()
        text = bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", errors="replace")
        code = response.status_code
        wait = None
        if code in RETRY_AFTER_STATUSES:
            wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        return Reply(code, text, retry_after=wait)

    async def _conclude(self, target: Target, reply: Reply, duration: float) -> dict[str, Any]:
        """Update the circuit, record the attempt, then return the result or raise."""
        endpoint_id, code = target.endpoint.id, reply.status_code
        kind = classify(code)
        error: WebhookError | None = None
        if kind == "retry":
            detail = f"HTTP {code}" if code is not None else "no response"
            error = EndpointUnavailable(
                f"webhook endpoint {endpoint_id}: {detail}", retry_after=reply.retry_after
            )
            now, policy = time.time(), self.options.circuit
            _, after = await self._change_circuit(target, lambda c: c.after_failure(now, policy))
        else:
            if kind == "failed":
                error = DeliveryRejected(f"webhook endpoint {endpoint_id}: HTTP {code}")
            # The endpoint answered: it is up, whatever it thought of the event.
            _, after = await self._change_circuit(target, lambda c: c.after_success())
        if code == 410:
            await self._deactivate(target)
        last = target.job.attempts >= target.job.max_attempts
        await self._record(target, "failed" if kind == "retry" and last else kind, reply, duration)
        result = self._tell(target, reply, duration, after.state)
        if error is not None:
            raise error
        return {**result.to_dict(), "delivery_id": target.payload.delivery_id}

    async def _deactivate(self, target: Target) -> None:
        await target.store.deactivate_endpoint(target.endpoint.id, "answered 410 Gone")
        logger.warning(
            "webhook endpoint %s answered 410 Gone: deactivated",
            target.endpoint.id,
            extra={"event": "webhook.deactivated", "endpoint": target.endpoint.id},
        )

    def _tell(
        self, target: Target, reply: Reply, duration: float, state: BreakerState
    ) -> DeliveryResult:
        """Build the attempt's ``DeliveryResult`` and hand it to the listener."""
        result = DeliveryResult(
            webhook_id=target.endpoint.id,
            url=target.endpoint.url,
            success=classify(reply.status_code) == "delivered",
            status_code=reply.status_code,
            error=None if classify(reply.status_code) == "delivered" else _error_of(reply),
            response_time_ms=round(duration * 1000, 3),
            attempt=target.job.attempts,
        )
        if self._on_result is not None:
            self._on_result(result, state.value)
        return result

    async def _change_circuit(
        self, target: Target, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        endpoint_id = target.endpoint.id
        before, after = await target.store.update_circuit(endpoint_id, change)
        set_circuit_state(endpoint_id, after.state.value)
        if after.state is not before.state:
            level = logging.WARNING if after.state is BreakerState.OPEN else logging.INFO
            logger.log(
                level,
                "circuit of webhook endpoint %s: %s -> %s after %d failures in a row",
                endpoint_id,
                before.state.value,
                after.state.value,
                after.failure_count,
                extra={"event": "webhook.circuit", "endpoint": endpoint_id},
            )
        return before, after

    async def _record(
        self, target: Target, outcome: str, reply: Reply, duration: float | None = None
    ) -> None:
        job, payload = target.job, target.payload
        error = "" if outcome == "delivered" else _error_of(reply)
        await target.store.record_delivery(
            DeliveryAttempt(
                endpoint_id=target.endpoint.id,
                job_id=job.id,
                delivery_id=payload.delivery_id,
                event_type=payload.event_type,
                attempt=job.attempts,
                outcome=outcome,
                status_code=reply.status_code,
                duration_seconds=duration,
                error=error,
                response_excerpt=reply.excerpt,
            )
        )
        record_webhook_delivery(outcome)
        logger.debug(
            "webhook %s to endpoint %s: %s (HTTP %s)",
            payload.delivery_id,
            target.endpoint.id,
            outcome,
            reply.status_code,
            extra={"event": "webhook.attempt", "job_id": job.id, "attempt": job.attempts},
        )


def _error_of(reply: Reply) -> str:
    return reply.error or f"HTTP {reply.status_code}"


def request_headers(target: Target, body: bytes, host: str) -> dict[str, str]:
    """Return the headers of one attempt: signatures, ids, event type, trace context."""
    job, payload, secret = target.job, target.payload, target.endpoint.secret
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": host,
        **standard_headers(secret, payload.delivery_id, int(time.time()), body),
        REFERENCE_SIGNATURE_HEADER: reference_signature(secret, body),
        "X-Webhook-ID": payload.webhook_id,
        "X-Delivery-Attempt": str(job.attempts),
        "X-Aragora-Event": payload.event_type,
        **trace_headers(job),
    }


def trace_headers(job: Job) -> dict[str, str]:
    """Return ``traceparent``/``tracestate`` of the current span, else those the job carries."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        stored = job.metadata.get(TRACE_CONTEXT_KEY)
        carrier = {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
    return {name: carrier[name] for name in TRACE_HEADERS if carrier.get(name)}
