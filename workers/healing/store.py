"""What consensus healing needs from its host: the ledger of finished debates, a record of
every healing, archiving, and the webhook jobs of a notification (``HealingStore``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from queue_app.queue import Job

from .types import HealingReason, HealingResult


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedDebate:
    """A debate that ended without consensus or failed, as the ledger recorded it."""

    debate_id: str
    #: ``completed`` or ``failed``.
    status: str
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: str
    created_at: float
    completed_at: float | None
    owner: str
    organization: str
    #: The first debate of its healing chain (itself unless healing enqueued it).
    root_debate_id: str
    #: Healings already recorded for the chain.
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HealingRecord:
    """One healing as stored: the heal job, its chain, attempt, reason and result."""

    heal_job_id: str
    root_debate_id: str
    attempt: int
    reason: HealingReason
    result: HealingResult


class HealingStore(Protocol):
    """The host's ledger of debates and healings (``queue_app.stores.healing``)."""

    async def unhealthy_debates(
        self, completed_after: float, completed_before: float, max_attempts: int, limit: int
    ) -> list[FinishedDebate]:
        """Return up to ``limit`` debates that finished in the window without consensus (or
        failed), are not archived, were not replaced by a healing debate, and whose chain had
        fewer than ``max_attempts`` healings; oldest first."""
        ...

    async def record(self, record: HealingRecord) -> bool:
        """Store a healing once; False when that heal job was recorded already."""
        ...

    async def archive(self, debate_id: str) -> bool:
        """Mark the debate archived; False when the ledger does not know it."""
        ...

    async def notifications(
        self, event_type: str, data: dict[str, Any], *, owner: str, organization: str, key: str
    ) -> list[tuple[str, Job]]:
        """Return (queue, job) of the webhook deliveries of one event to the endpoints of
        ``owner``/``organization`` subscribed to it; job ids derive from ``key`` (idempotent)."""
        ...
