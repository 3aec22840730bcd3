"""RedisEndpointStore: webhook endpoints kept in the queue's records, for use without Django.

``enqueue_webhook_delivery`` registers endpoints here, and ``WebhookDeliveryWorker`` built
without a store delivers from here. Records of the queue's ``RecordStore`` (Redis keys
``P rec:<name>``), per endpoint id:

| record                     | holds                                                        |
|----------------------------|--------------------------------------------------------------|
| ``webhook:endpoint:<id>``  | URL, secret (Fernet token), active flag, why it was stopped   |
| ``webhook:circuit:<id>``   | circuit breaker state                                        |
| ``webhook:health:<id>``    | deliveries and failures, failures in a row, last of each     |
| ``webhook:deliveries:<id>``| the last ``DELIVERY_LOG_KEEP`` attempts, newest first (a log) |
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from queue_app.queue import InvalidJob, JobQueue, RecordStore

from .cipher import SecretCipher
from .circuit import BreakerState, CircuitChange, CircuitState
from .signing import check_secret
from .store import DeliveryAttempt, EndpointView
from .targets import check_target

#: ``registry`` of webhook jobs whose endpoint is registered in the queue's records.
REGISTRY = "queue"
#: Attempts kept in an endpoint's delivery log.
DELIVERY_LOG_KEEP = 100

Record = dict[str, Any]


def _circuit(record: Record | None) -> CircuitState:
    if not record:
        return CircuitState()
    return CircuitState(
        state=BreakerState(record["state"]),
        failure_count=int(record["failure_count"]),
        opened_at=record.get("opened_at"),
        next_attempt_at=record.get("next_attempt_at"),
    )


def _circuit_record(state: CircuitState) -> Record:
    return {**asdict(state), "state": state.state.value}


def _counted(health: Record | None, attempt: DeliveryAttempt) -> Record:
    """Return ``health`` with ``attempt`` (which reached the endpoint) counted."""
    counts = dict(health or {})
    if attempt.succeeded:
        counts["success_count"] = counts.get("success_count", 0) + 1
        counts["consecutive_failures"] = 0
        counts["last_success_at"] = attempt.at
    else:
        counts["failure_count"] = counts.get("failure_count", 0) + 1
        counts["consecutive_failures"] = counts.get("consecutive_failures", 0) + 1
        counts["last_failure_at"] = attempt.at
    return counts


class RedisEndpointStore:
    """An ``EndpointStore`` over the queue's records; secrets encrypted with the queue's keys."""

    def __init__(self, records: RecordStore, secret_keys: Sequence[str]) -> None:
        self.records = records
        self._secret_keys = tuple(secret_keys)
        self._cipher: SecretCipher | None = None

    @classmethod
    def of_queue(cls, queue: JobQueue) -> RedisEndpointStore:
        """Return the store in ``queue``'s records, with its ``webhook_secret_keys``."""
        return cls(queue.records(), queue.config.webhook_secret_keys)

    @property
    def cipher(self) -> SecretCipher:
        """Return the cipher of secrets (built on first use: a worker without keys starts)."""
        if self._cipher is None:
            self._cipher = SecretCipher(self._secret_keys)
        return self._cipher

    async def register(
        self, webhook_id: str, url: str, secret: str, *, allow_private: bool = False
    ) -> None:
        """Create or update endpoint ``webhook_id`` (a new URL makes a stopped one active).

        Raises:
            TargetRefused: the URL is not an http(s) URL of a public address.
            InvalidJob: empty id, or a malformed secret.
            ConfigError: no ``webhook_secret_keys``.
        """
        if not webhook_id:
            raise InvalidJob("webhook_id must not be empty")
        check_target(url, allow_private)
        try:
            check_secret(secret)
        except ValueError as error:
            raise InvalidJob(str(error)) from None
        token = self.cipher.encrypt(secret)

        def registered(before: Record | None) -> Record:
            known = before or {}
            same_url = known.get("url") == url
            return {
                "url": url,
                "secret": token,
                "is_active": bool(known.get("is_active", True)) if same_url else True,
                "stopped_because": known.get("stopped_because", "") if same_url else "",
                "registered_at": known.get("registered_at") or time.time(),
            }

        await self.records.update(f"webhook:endpoint:{webhook_id}", registered)

    async def get_endpoint(self, endpoint_id: str) -> EndpointView | None:
        """Return the endpoint with its secret decrypted, or None."""
        record = await self.records.get(f"webhook:endpoint:{endpoint_id}")
        if record is None:
            return None
        return EndpointView(
            id=endpoint_id,
            url=str(record["url"]),
            secret=self.cipher.decrypt(str(record["secret"])),
            is_active=bool(record.get("is_active", True)),
        )

    async def update_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        """Apply ``change`` to the endpoint's circuit record atomically."""
        before, after = await self.records.update(
            f"webhook:circuit:{endpoint_id}", lambda r: _circuit_record(change(_circuit(r)))
        )
        return _circuit(before), _circuit(after)

    async def record_delivery(self, attempt: DeliveryAttempt) -> None:
        """Log the attempt and, when it reached the endpoint, count it in the health record."""
        name = attempt.endpoint_id
        await self.records.append(f"webhook:deliveries:{name}", asdict(attempt), DELIVERY_LOG_KEEP)
        if attempt.reached_endpoint:
            await self.records.update(f"webhook:health:{name}", lambda h: _counted(h, attempt))

    async def deactivate_endpoint(self, endpoint_id: str, reason: str) -> None:
        """Mark the endpoint inactive, saying why (an unknown endpoint stays unknown)."""
        name = f"webhook:endpoint:{endpoint_id}"
        if await self.records.get(name) is None:
            return
        await self.records.update(
            name, lambda r: {**(r or {}), "is_active": False, "stopped_because": reason}
        )
