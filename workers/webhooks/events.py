"""Webhook events as they travel: the job payload and the JSON body POSTed for it.

A webhook job (type ``webhook_delivery`` on the ``webhook_delivery`` queue) carries the endpoint
id, the event type and data, and a delivery id; never the endpoint's URL or secret, which the
delivery worker reads through its ``EndpointStore``. The body POSTed for it follows the Standard
Webhooks payload structure, the same bytes on every attempt:
``{"type": <event type>, "timestamp": <ISO 8601, UTC>, "data": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue

from .redis_store import REGISTRY, RedisEndpointStore

WEBHOOKS_QUEUE = "webhook_delivery"
WEBHOOK_JOB_TYPE = "webhook_delivery"
#: Event of "send test event" (admin, API); every endpoint takes it.
TEST_EVENT = "webhook.test"
DEFAULT_MAX_ATTEMPTS = 5
#: Largest accepted event body, as JSON.
MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookPayload:
    """Input of a webhook job: which endpoint, which event; never its URL or secret."""

    webhook_id: str
    event_type: str
    event_data: dict[str, Any]
    #: Sent as ``webhook-id``; the same on every attempt and on redeliveries.
    delivery_id: str
    #: Unix time the event happened (``timestamp`` of the body).
    occurred_at: float
    #: Where the endpoint is registered: "" for the worker's store, ``REGISTRY`` for the
    #: queue's records (endpoints registered by ``enqueue_webhook_delivery``).
    registry: str = ""

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
                registry=str(data.get("registry") or ""),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidJob(f"invalid webhook payload: {error!r}") from error

    def body(self) -> bytes:
        """Return the JSON body POSTed to the endpoint (the same bytes on every attempt)."""
        stamp = datetime.fromtimestamp(self.occurred_at, tz=UTC).isoformat()
        event = {
            "type": self.event_type,
            "timestamp": stamp.replace("+00:00", "Z"),
            "data": self.event_data,
        }
        return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def create_webhook_job(
    webhook_id: str | int,
    event_type: str,
    event_data: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    delivery_id: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    metadata: Mapping[str, Any] | None = None,
    registry: str = "",
    occurred_at: float | None = None,
) -> Job:
    """Build a webhook job (``InvalidJob`` for bad input or event data over MAX_EVENT_BYTES).

    A ``job_id`` derived from what happened makes enqueueing the same event twice a no-op; a
    redelivery passes the original ``delivery_id`` and ``occurred_at`` (the same body).
    """
    if max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    job = Job(payload={}, max_attempts=max_attempts)
    if job_id is not None:
        job.id = job_id
    payload = WebhookPayload(
        webhook_id=str(webhook_id),
        event_type=event_type,
        event_data=dict(event_data or {}),
        delivery_id=delivery_id or job.id,
        occurred_at=job.created_at if occurred_at is None else occurred_at,
        registry=registry,
    )
    if len(payload.body()) > MAX_EVENT_BYTES:
        raise InvalidJob(f"event_data must be at most {MAX_EVENT_BYTES} bytes of JSON")
    job.payload = {key: value for key, value in asdict(payload).items() if value != ""}
    job.metadata = {**(metadata or {}), "job_type": WEBHOOK_JOB_TYPE, "event_type": event_type}
    return job


async def enqueue_webhook_delivery(
    queue: JobQueue,
    webhook_id: str,
    url: str,
    secret: str,
    event_type: str,
    event_data: Mapping[str, Any],
    priority: int = 0,
    *,
    allow_private: bool | None = None,
) -> Job:
    """Register (or update) endpoint ``webhook_id`` and enqueue the delivery of one event to it.

    The URL passes the target check (``allow_private``, by default the queue's
    ``webhook_allow_private``, lets loopback and private addresses through, for development)
    and the secret is stored encrypted with the queue's ``webhook_secret_keys`` in its records;
    the job carries the endpoint id and the event only.

    Raises:
        TargetRefused: the URL is not an http(s) URL of a public address.
        ConfigError: the queue has no ``webhook_secret_keys`` (ARAGORA_WEBHOOK_SECRET_KEYS).
        InvalidJob: empty id or event type, or event data that is not a small JSON object.
    """
    store = RedisEndpointStore.of_queue(queue)
    if allow_private is None:
        allow_private = queue.config.webhook_allow_private
    await store.register(webhook_id, url, secret, allow_private=allow_private)
    job = create_webhook_job(webhook_id, event_type, event_data, registry=REGISTRY)
    await queue.enqueue(job, priority, WEBHOOKS_QUEUE)
    return job
