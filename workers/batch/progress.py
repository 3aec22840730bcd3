"""``BatchJobProgress``: the counts, results and errors of one batch, as stored with the job.

While a batch runs, every finished item is a checkpoint of the job (kept across a crash) and
the counts are the job's progress (``GET /api/queue/jobs/{id}/`` shows them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from queue_app.queue import JobQueue

#: ``status`` of an item that was explained, and of one that raised.
SUCCESS = "success"
ERROR = "error"


@dataclass
class BatchJobProgress:
    """Progress of one batch: counts, and the finished items in the order of the batch."""

    job_id: str
    total: int
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    #: Unix time the batch first started (kept across a takeover).
    started_at: float = field(default_factory=time.time)
    #: ``{debate_id, status: "success", explanation, processing_time_ms}`` per explained item.
    results: list[dict[str, Any]] = field(default_factory=list)
    #: ``{debate_id, status: "error", error, processing_time_ms}`` per failed item.
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completion_percent(self) -> float:
        """Return the share of processed items in percent (100 for an empty batch)."""
        return 100.0 if self.total == 0 else self.processed / self.total * 100

    @property
    def elapsed_seconds(self) -> float:
        """Return the seconds since the batch first started."""
        return time.time() - self.started_at

    def record(self, item: dict[str, Any]) -> None:
        """Count one finished item and keep it with the results or the errors."""
        self.processed += 1
        if item["status"] == SUCCESS:
            self.succeeded += 1
            self.results.append(item)
        else:
            self.failed += 1
            self.errors.append(item)

    def counts(self) -> dict[str, Any]:
        """Return what the job's progress shows: counts, percent and times."""
        return {
            "job_id": self.job_id,
            "total": self.total,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "completion_percent": round(self.completion_percent, 2),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "started_at": self.started_at,
        }

    def result(self, order: list[str]) -> dict[str, Any]:
        """Return the job's result; items follow ``order`` (the batch's debate ids)."""
        rank = {debate_id: index for index, debate_id in enumerate(order)}

        def ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return sorted(items, key=lambda item: rank.get(item["debate_id"], len(rank)))

        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "results": ordered(self.results),
            "errors": ordered(self.errors),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }

    @classmethod
    def from_stored(
        cls, job_id: str, progress: Any, items: dict[str, Any] | None = None
    ) -> BatchJobProgress:
        """Rebuild the progress of a batch from its job progress and its checkpoints."""
        data = progress if isinstance(progress, dict) else {}
        rebuilt = cls(
            job_id=job_id,
            total=int(data.get("total") or 0),
            started_at=float(data.get("started_at") or time.time()),
        )
        for item in (items or {}).values():
            rebuilt.record(item)
        if not items:  # checkpoints are dropped once the batch completed
            for name in ("processed", "succeeded", "failed"):
                setattr(rebuilt, name, int(data.get(name) or 0))
        return rebuilt


async def load_batch_progress(queue: JobQueue, job_id: str) -> BatchJobProgress | None:
    """Return the progress of any batch as stored (from any process), or None when unknown."""
    job = await queue.get_status(job_id)
    if job is None:
        return None
    return BatchJobProgress.from_stored(job_id, job.progress, await queue.get_checkpoints(job_id))
