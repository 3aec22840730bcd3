"""Deliver one webhook event: guard the target, keep a circuit breaker, POST, classify the reply.

The worker reads the job's endpoint (URL, secret, active, event types) through an
``EndpointStore`` and POSTs the signed body of ``workers.webhooks.events`` with the headers
``X-Aragora-Signature``, ``X-Aragora-Delivery`` (the same on every retry: receivers deduplicate
by it), ``X-Aragora-Event``, ``X-Aragora-Attempt`` and ``traceparent`` of the job's trace.

2xx means delivered; 408, 429, 5xx and transport errors are retried (the queue's backoff, up to
the job's ``max_attempts``, 5 by default); any other status fails the job at once. Hostnames are
resolved once and the request goes to the vetted address, so private, loopback, link-local,
multicast and reserved targets are refused unless ``allow_private``. Each endpoint has a circuit
breaker (``workers.webhooks.circuit.CircuitState``): a delivery meeting an open circuit is
deferred, without using up an attempt, until the circuit lets a trial through.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from opentelemetry import propagate

from queue_app.queue import Job, QueueError
from queue_app.queue.tracing import TRACE_CONTEXT_KEY

from ..metrics import record_webhook_delivery, set_circuit_state
from ..runtime import Defer
from .circuit import BreakerState, CircuitChange, CircuitPolicy, CircuitState
from .events import SIGNATURE_HEADER, WebhookPayload, sign
from .store import DeliveryAttempt, EndpointStore, EndpointView

logger = logging.getLogger(__name__)

#: Bytes of the response body kept in the delivery log.
EXCERPT_BYTES = 1024
#: Resolved addresses tried in turn when connecting fails.
MAX_ADDRESSES = 3
#: Seconds a half-open trial holds its lease beyond the attempt's total timeout.
LEASE_MARGIN_SECONDS = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "Aragora-Webhooks/1"
#: Trace headers forwarded to receivers (never baggage, which may carry internal data).
TRACE_HEADERS = ("traceparent", "tracestate")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookError(QueueError):
    """The webhook could not be delivered."""


class EndpointGone(WebhookError, ValueError):
    """The endpoint is missing, inactive, or does not take this event; retrying will not help."""


class TargetRefused(WebhookError, ValueError):
    """The endpoint's URL is not a public http(s) target."""


class DeliveryRejected(WebhookError, ValueError):
    """The endpoint refused the event with a status that retrying will not change."""


class EndpointUnavailable(WebhookError, ConnectionError):
    """The endpoint did not take the event now; a later attempt may succeed."""


class CircuitOpen(EndpointUnavailable):
    """The endpoint's circuit is open: the delivery waits for a later attempt."""


# -- targets ----------------------------------------------------------------------------------


def is_public_address(address: IPAddress) -> bool:
    """Tell whether ``address`` is a public unicast address (IPv4-mapped ones unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    special = address.is_private or address.is_loopback or address.is_link_local
    special = special or address.is_multicast or address.is_reserved or address.is_unspecified
    return address.is_global and not special


async def resolve_target(url: httpx.URL, allow_private: bool) -> list[IPAddress]:
    """Return the addresses of ``url``'s host, refusing non-public ones unless allowed.

    Raises:
        TargetRefused: not http(s), or some address is not public.
        OSError: the name does not resolve (retryable).
    """
    if url.scheme not in DEFAULT_PORTS or not url.host:
        raise TargetRefused("webhook targets must be http or https URLs")
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(url.host)]
    except ValueError:
        port = url.port or DEFAULT_PORTS[url.scheme]
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise TargetRefused("webhook target is not a public address")
    return addresses


def classify(status_code: int | None) -> str:
    """Return ``delivered`` (2xx), ``retry`` (408, 429, 5xx, no response) or ``failed``."""
    if status_code is None or status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


# -- delivering -------------------------------------------------------------------------------


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


class WebhookDeliverer:
    """The handler of webhook jobs: one HTTP client, one endpoint store."""

    def __init__(self, store: EndpointStore, options: DeliveryOptions | None = None) -> None:
        self.store = store
        self.options = options or DeliveryOptions()
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
        payload = WebhookPayload.from_job(job)
        endpoint = await self._endpoint(payload)
        payload = replace(payload, webhook_id=endpoint.id)  # the store's spelling of the id
        now = time.time()
        before, _ = await self._change_circuit(endpoint.id, lambda c: c.admitting(now, self._lease))
        if not before.admits(now):
            error = CircuitOpen(f"circuit of webhook endpoint {endpoint.id} is open")
            await self._record(job, payload, "circuit_open", Reply(None, error=str(error)))
            # Wait for the trial without using up an attempt: nothing was sent.
            raise Defer((before.next_attempt_at or now) - now, str(error))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.options.total_timeout):
                reply = await self._post(job, payload, endpoint)
        except TargetRefused as error:
            await self._record(job, payload, "refused", Reply(None, error=str(error)))
            raise TargetRefused(f"webhook endpoint {endpoint.id}: {error}") from None
        except (httpx.TransportError, TimeoutError, OSError) as error:
            reply = Reply(None, error=f"{type(error).__name__}: {error}"[:500])
        duration = time.perf_counter() - started
        return await self._conclude(job, payload, reply, duration)

    async def _endpoint(self, payload: WebhookPayload) -> EndpointView:
        endpoint = await self.store.get_endpoint(payload.webhook_id)
        if endpoint is None:
            raise EndpointGone(f"webhook endpoint {payload.webhook_id} not found")
        if not endpoint.is_active:
            raise EndpointGone(f"webhook endpoint {endpoint.id} is inactive")
        if not endpoint.subscribes(payload.event_type):
            raise EndpointGone(f"webhook endpoint {endpoint.id} does not take this event type")
        return endpoint

    async def _post(self, job: Job, payload: WebhookPayload, endpoint: EndpointView) -> Reply:
        """POST to the vetted addresses of the endpoint's host in turn, until one connects."""
        try:
            url = httpx.URL(endpoint.url)
        except httpx.InvalidURL:
            raise TargetRefused("webhook target is not a valid URL") from None
        addresses = await resolve_target(url, self.options.allow_private)
        body = payload.body()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": url.netloc.decode("ascii"),
            "X-Aragora-Event": payload.event_type,
            "X-Aragora-Delivery": payload.delivery_id,
            "X-Aragora-Attempt": str(job.attempts),
            SIGNATURE_HEADER: sign(endpoint.secret, body, int(time.time())),
            **trace_headers(job),
        }
        # TLS still checks the certificate against the host name (SNI), not the address.
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        candidates = [url.copy_with(host=str(address)) for address in addresses[:MAX_ADDRESSES]]
        for target in candidates[:-1]:
            with contextlib.suppress(httpx.ConnectError):
                return await self._send(target, body, headers, extensions)
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
        return Reply(response.status_code, text)

    async def _conclude(
        self, job: Job, payload: WebhookPayload, reply: Reply, duration: float
    ) -> dict[str, Any]:
        """Update the circuit, record the attempt, then return the result or raise."""
        code = reply.status_code
        kind = classify(code)
        error: WebhookError | None = None
        if kind == "retry":
            detail = f"HTTP {code}" if code is not None else "no response"
            error = EndpointUnavailable(f"webhook endpoint {payload.webhook_id}: {detail}")
            now = time.time()
            policy = self.options.circuit
            await self._change_circuit(payload.webhook_id, lambda c: c.after_failure(now, policy))
        else:
            if kind == "failed":
                error = DeliveryRejected(f"webhook endpoint {payload.webhook_id}: HTTP {code}")
            # The endpoint answered: it is up, whatever it thought of the event.
            await self._change_circuit(payload.webhook_id, lambda c: c.after_success())
        last = job.attempts >= job.max_attempts
        outcome = "failed" if kind == "retry" and last else kind
        await self._record(job, payload, outcome, reply, duration)
        if error is not None:
            raise error
        return {
            "delivery_id": payload.delivery_id,
            "webhook_id": payload.webhook_id,
            "status_code": code,
            "attempt": job.attempts,
        }

    async def _change_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        before, after = await self.store.update_circuit(endpoint_id, change)
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
        self,
        job: Job,
        payload: WebhookPayload,
        outcome: str,
        reply: Reply,
        duration: float | None = None,
    ) -> None:
        error = reply.error or ("" if outcome == "delivered" else f"HTTP {reply.status_code}")
        await self.store.record_delivery(
            DeliveryAttempt(
                endpoint_id=payload.webhook_id,
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
            payload.webhook_id,
            outcome,
            reply.status_code,
            extra={"event": "webhook.attempt", "job_id": job.id, "attempt": job.attempts},
        )


def trace_headers(job: Job) -> dict[str, str]:
    """Return ``traceparent``/``tracestate`` of the current span, else those the job carries."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        stored = job.metadata.get(TRACE_CONTEXT_KEY)
        carrier = {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
    return {name: carrier[name] for name in TRACE_HEADERS if carrier.get(name)}
