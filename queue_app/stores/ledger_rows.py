"""The ledger row of a job hash, built from the hash's text without a ``Job`` in between.

``job_record_fields(job_from_hash(fields))`` gives the same columns; this skips building the
``Job`` (and decoding its JSON fields with ``json.loads``' Python layers), which was most of the
ledger writer's CPU per event after the SQL.
"""

from __future__ import annotations

from typing import Any

from queue_app.models import from_timestamp, trace_id_in
from queue_app.queue import JobStatus
from queue_app.queue.redis import StoredJob


def stored_record_fields(stored: StoredJob) -> dict[str, Any]:
    """Return the ``JobRecord`` columns of a job hash, as ``job_record_fields`` gives them."""
    fields, meta = stored.fields, stored.metadata
    get = fields.get
    payload = stored.decoded("payload", {})
    return {
        "queue": get("queue") or "",
        "job_type": str(meta.get("job_type") or ""),
        "status": JobStatus(get("status") or "pending").value,
        "payload": payload if isinstance(payload, dict) else {"raw": payload},
        "result": stored.decoded("result", None),
        "error": get("error") or "",
        "attempts": int(get("attempts") or 0),
        "max_attempts": int(get("max_attempts") or 0),
        "priority": int(get("priority") or 0),
        "worker_id": get("worker_id") or "",
        "trace_id": trace_id_in(meta),
        "owner": str(meta.get("owner") or ""),
        "organization": str(meta.get("organization") or ""),
        "created_at": from_timestamp(float(get("created_at") or 0)),
        "started_at": _moment(get("started_at")),
        "completed_at": _moment(get("completed_at")),
    }


def _moment(raw: str | None) -> Any:
    return from_timestamp(float(raw)) if raw else None
