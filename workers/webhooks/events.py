"""Webhook events as they travel: the job payload, the JSON body and its signature.

A webhook job (type ``webhook`` on the ``webhooks`` queue) carries the endpoint id, the event
type and data, and a delivery id; never the endpoint's URL or secret, which the delivery worker
reads through its ``EndpointStore``. The body POSTed for it is
``{"id": <delivery id>, "event": <type>, "created_at": <unix time>, "data": {...}}``, the same
bytes on every attempt, signed in the ``X-Aragora-Signature`` header as
``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue

WEBHOOKS_QUEUE = "webhooks"
WEBHOOK_JOB_TYPE = "webhook"
DEFAULT_MAX_ATTEMPTS = 5
#: Largest accepted event body, as JSON.
MAX_EVENT_BYTES = 256 * 1024
#: Signatures older or newer than this are refused by ``verify_signature``.
SIGNATURE_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-Aragora-Signature"


# -- signatures -------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the ``X-Aragora-Signature`` value of ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Tell whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds."""
    parts = dict(item.partition("=")[::2] for item in header.split(","))
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# -- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookPayload:
    """Input of a webhook job: which endpoint, which event; never its URL or secret."""

    webhook_id: str
    event_type: str
    event_data: dict[str, Any]
    #: Sent as ``X-Aragora-Delivery``; the same on every attempt and on manual retries.
    delivery_id: str
    #: Unix time the event happened (``created_at`` of the body).
    occurred_at: float

    def __post_init__(self) -> None:
        if not self.webhook_id or not self.event_type or not self.delivery_id:
            raise InvalidJob("webhook_id, event_type and delivery_id must not be empty")
        if not isinstance(self.event_data, dict):
            raise InvalidJob("event_data must be a JSON object")

    @classmethod
    def from_job(cls, job: Job) -> WebhookPayload:
        """Read the payload of a webhook job (``InvalidJob`` when malformed)."""
        data = job.payload
        try:
            return cls(
                webhook_id=str(data["webhook_id"]),
                event_type=str(data["event_type"]),
                event_data=data.get("event_data") or {},
                delivery_id=str(data.get("delivery_id") or job.id),
                occurred_at=float(data.get("occurred_at") or job.created_at),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidJob(f"invalid webhook payload: {error!r}") from error

    def body(self) -> bytes:
        """Return the JSON body POSTed to the endpoint (the same bytes on every attempt)."""
        event = {
            "id": self.delivery_id,
            "event": self.event_type,
            "created_at": self.occurred_at,
            "data": self.event_data,
        }
        return json.dumps(event, separators=(",", ":")).encode()


def create_webhook_job(
    webhook_id: str | int,
    event_type: str,
    event_data: Mapping[str, Any] | None = None,
    *,
    delivery_id: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    metadata: Mapping[str, Any] | None = None,
) -> Job:
    """Build a webhook job (``InvalidJob`` for bad input or event data over MAX_EVENT_BYTES)."""
    if max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    job = Job(payload={}, max_attempts=max_attempts)
    payload = WebhookPayload(
        webhook_id=str(webhook_id),
        event_type=event_type,
        event_data=dict(event_data or {}),
        delivery_id=delivery_id or job.id,
        occurred_at=job.created_at,
    )
    if len(payload.body()) > MAX_EVENT_BYTES:
        raise InvalidJob(f"event_data must be at most {MAX_EVENT_BYTES} bytes of JSON")
    job.payload = asdict(payload)
    job.metadata = {**(metadata or {}), "job_type": WEBHOOK_JOB_TYPE}
    return job


async def enqueue_webhook_delivery(
    queue: JobQueue,
    webhook_id: str | int,
    event_type: str,
    event_data: Mapping[str, Any] | None = None,
    url: str | None = None,
    secret: str | None = None,
    *,
    delivery_id: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    priority: int = 0,
    delay_seconds: float = 0,
    metadata: Mapping[str, Any] | None = None,
    queue_name: str = WEBHOOKS_QUEUE,
) -> Job:
    """Enqueue the delivery of one event to endpoint ``webhook_id``; return the job.

    ``url`` and ``secret`` exist for the reference signature only: they are never stored in
    the job (a UserWarning says so). The worker uses the endpoint's stored URL and secret.
    """
    if url is not None or secret is not None:
        warnings.warn(
            "enqueue_webhook_delivery ignores url and secret: the endpoint's stored ones are used",
            UserWarning,
            stacklevel=2,
        )
    job = create_webhook_job(
        webhook_id,
        event_type,
        event_data,
        delivery_id=delivery_id,
        max_attempts=max_attempts,
        metadata=metadata,
    )
    await queue.enqueue(job, priority, queue_name, delay_seconds)
    return job
