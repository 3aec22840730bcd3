"""RoutingWorker: the worker of the ``routing`` queue, one debate result to one channel a job.

The destination is the debate job's recorded origin (``queue_app.queue.origin``), or the
``recipient_email`` of a ``routing_email`` job. Every attempt is recorded in the
``RouteStore``'s delivery log. A failed attempt is retried through the queue with exponential
backoff from ``retry_delay_seconds`` (never at once), up to the job's ``max_attempts`` (5);
permanent errors (no origin, unknown platform, 4xx other than 408/429) fail at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, ClassVar, Unpack
from urllib.parse import urlsplit

from queue_app.queue import Job, JobQueue, QueueError, RetryPolicy
from queue_app.queue.origin import ORIGIN_PLATFORMS, URL_PLATFORMS, DebateOrigin, origin_of

from ..metrics import record_route_delivery
from ..runtime import Defer, KindContext, KindWorker, RuntimeArguments, WorkerOptions
from .channels import HttpSender, Reply, hand_to_webhooks, send_email
from .config import RoutingConfig
from .jobs import JOB_TYPE_ROUTING_EMAIL, JOB_TYPES, ROUTING_QUEUE, RoutingPayload
from .messages import (
    RouteMessage,
    discord_body,
    email_message,
    slack_body,
    teams_body,
    telegram_body,
    webhook_data,
)
from .store import RouteAttempt, RouteStore

logger = logging.getLogger(__name__)

#: Seconds a routing job waits for a debate that has not recorded its result yet.
RESULT_WAIT_SECONDS = 5.0

Send = Callable[[Job, DebateOrigin, RouteMessage, dict[str, Any]], Awaitable[Reply]]


class RouteRejected(QueueError, ValueError):
    """The result cannot be routed; retrying will not help."""


class RouteUnavailable(QueueError, ConnectionError):
    """The platform did not take the result now; a later attempt may succeed."""


def shown_target(origin: DebateOrigin) -> str:
    """Return the target as the delivery log shows it (a webhook URL's host only)."""
    if origin.platform in URL_PLATFORMS:
        return urlsplit(origin.target).hostname or "?"
    return origin.target


class RoutingWorker(KindWorker):
    """Worker for the ``routing`` queue: each job sends one debate result to its origin."""

    QUEUE_NAME: ClassVar[str] = ROUTING_QUEUE
    #: Jobs at once without ``--concurrency`` (README): deliveries wait on platforms.
    DEFAULT_CONCURRENCY: ClassVar[int] = 20

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        max_concurrent: int = 5,
        retry_delay_seconds: float | None = None,
        retry_policy: RetryPolicy | None = None,
        *,
        store: RouteStore | None = None,
        config: RoutingConfig | None = None,
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.config = config or RoutingConfig()
        if retry_delay_seconds is None:
            retry_delay_seconds = self.config.retry_delay_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self.store = store
        self.http = HttpSender(self.config)
        #: One sender per platform: ``_slack``, ``_discord``, ... below.
        self.senders: dict[str, Send] = {p: getattr(self, f"_{p}") for p in ORIGIN_PLATFORMS}
        policy = retry_policy or replace(queue.retry_policy, base_delay_seconds=retry_delay_seconds)
        super().__init__(
            queue,
            dict.fromkeys(JOB_TYPES, self.route),
            worker_id,
            max_concurrent,
            retry_policy=policy,
            closers=(self.http.aclose,),
            **runtime,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> RoutingWorker:
        """Build the worker over the route store and routing settings of ``context``."""
        return cls(
            queue,
            options.worker_id,
            cls.concurrency(options),
            store=context.route_store,
            config=context.routing,
            **context.runtime_arguments(options),
        )

    async def route(self, job: Job) -> dict[str, Any]:
        """Deliver the debate's result to its destination once; raise to retry or fail."""
        payload = RoutingPayload.from_job(job)
        if self.store is not None and await self.store.delivered(job.id):
            return {"status": "delivered", "debate_id": payload.debate_id, "repeated": True}
        debate, result = await self._debate(payload)
        origin = self._destination(payload, debate)
        send = self.senders.get(origin.platform)
        if send is None:
            raise RouteRejected(f"unknown platform {origin.platform!r}")
        message = RouteMessage.of(debate, result, self.config.public_url)
        started = time.perf_counter()
        try:
            reply = await send(job, origin, message, result)
        except Defer as defer:
            await self._record(job, payload, origin, Reply("circuit_open", error=str(defer)))
            raise
        duration = time.perf_counter() - started
        await self._record(job, payload, origin, reply, duration)
        if reply.outcome == "retry":
            raise RouteUnavailable(f"{origin.platform}: {reply.error or 'no response'}")
        if reply.outcome == "failed":
            raise RouteRejected(f"{origin.platform} refused the result: {reply.error}")
        return {
            "status": "delivered",
            "debate_id": payload.debate_id,
            "platform": origin.platform,
            "status_code": reply.status_code,
            "duration_seconds": round(duration, 3),
        }

    async def _debate(self, payload: RoutingPayload) -> tuple[Job, dict[str, Any]]:
        """Return the debate job and its result (from the payload, else from the job)."""
        debate = await self.queue.get_status(payload.debate_id)
        if debate is None:
            raise RouteRejected(f"debate {payload.debate_id} not found (or expired)")
        result = payload.result if payload.result is not None else debate.result
        if isinstance(result, dict):
            return debate, result
        if debate.status.is_terminal:
            raise RouteRejected(f"debate {payload.debate_id} ended {debate.status.value}")
        raise Defer(RESULT_WAIT_SECONDS, "the debate has not finished")

    def _destination(self, payload: RoutingPayload, debate: Job) -> DebateOrigin:
        if payload.job_type == JOB_TYPE_ROUTING_EMAIL and payload.recipient_email:
            return DebateOrigin(platform="email", target=payload.recipient_email)
        origin = origin_of(debate)
        if origin is None:
            raise RouteRejected(f"debate {payload.debate_id} has no origin to route to")
        return origin

    # -- one sender per platform --------------------------------------------------------------

    async def _slack(self, job: Job, origin: DebateOrigin, message: RouteMessage, _: Any) -> Reply:
        return await self.http.post_webhook(origin.target, slack_body(message))

    async def _discord(
        self, job: Job, origin: DebateOrigin, message: RouteMessage, _: Any
    ) -> Reply:
        return await self.http.post_webhook(origin.target, discord_body(message))

    async def _teams(self, job: Job, origin: DebateOrigin, message: RouteMessage, _: Any) -> Reply:
        return await self.http.post_webhook(origin.target, teams_body(message))

    async def _telegram(
        self, job: Job, origin: DebateOrigin, message: RouteMessage, _: Any
    ) -> Reply:
        return await self.http.post_telegram(telegram_body(message, origin.target))

    async def _webhook(
        self, job: Job, origin: DebateOrigin, message: RouteMessage, result: dict[str, Any]
    ) -> Reply:
        return await hand_to_webhooks(self.queue, job, origin.target, webhook_data(message, result))

    async def _email(self, job: Job, origin: DebateOrigin, message: RouteMessage, _: Any) -> Reply:
        return await send_email(self.store, email_message(message, origin.target))

    # -- the delivery log ---------------------------------------------------------------------

    async def _record(
        self,
        job: Job,
        payload: RoutingPayload,
        origin: DebateOrigin,
        reply: Reply,
        duration: float | None = None,
    ) -> None:
        last = job.attempts >= job.max_attempts
        outcome = "failed" if reply.outcome == "retry" and last else reply.outcome
        record_route_delivery(origin.platform, outcome)
        logger.debug(
            "routing %s of debate %s to %s: %s (HTTP %s)",
            job.id,
            payload.debate_id,
            origin.platform,
            outcome,
            reply.status_code,
            extra={"event": "routing.attempt", "job_id": job.id, "attempt": job.attempts},
        )
        if self.store is None:
            return
        await self.store.record_delivery(
            RouteAttempt(
                job_id=job.id,
                debate_id=payload.debate_id,
                platform=origin.platform,
                target=shown_target(origin),
                attempt=job.attempts,
                outcome=outcome,
                status_code=reply.status_code,
                duration_seconds=duration,
                error=reply.error,
                response_excerpt=reply.excerpt,
                owner=str(job.metadata.get("owner") or ""),
                organization=str(job.metadata.get("organization") or ""),
            )
        )
