"""``LedgerDebateHistory``: finished debates from the job ledger, for the batch explainer."""

from __future__ import annotations

from queue_app.models import JobRecord
from queue_app.queue import Job
from queue_app.queue.payloads import DEBATE_JOB_TYPE
from queue_app.stores.db_thread import in_db_thread


def debate_from_ledger(debate_id: str) -> Job | None:
    """Return the ledger's last record of debate ``debate_id`` as a job, or None."""
    record = JobRecord.objects.filter(job_id=debate_id, job_type=DEBATE_JOB_TYPE).first()
    return record.to_job() if record is not None else None


class LedgerDebateHistory:
    """The batch kind's ``DebateHistory`` over ``JobRecord`` rows."""

    async def get_debate(self, debate_id: str) -> Job | None:
        """Return the debate as the ledger last recorded it, or None."""
        return await in_db_thread(debate_from_ledger)(debate_id)
