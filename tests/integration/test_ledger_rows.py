"""The ledger writes a job hash as the ``Job`` it makes is written: same columns, same text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from queue_app.models import JobRecord, job_record_fields
from queue_app.queue.redis import LedgerEvent, StoredJob
from queue_app.queue.redis.status import job_from_hash
from queue_app.stores.ledger_rows import stored_record_fields
from queue_app.stores.ledger_writer import store_events

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
METADATA = {"job_type": "debate", "owner": 7, "organization": "acme"}
#: Job hashes as Redis holds them: compact JSON text, odd and missing fields.
HASHES: list[dict[str, str]] = [
    {
        "id": "full",
        "queue": "debates",
        "status": "completed",
        "payload": '{"question":"Ünïcode — ok?","n":[1,2.5,1e+16,-0.0,null,true]}',
        "metadata": json.dumps({**METADATA, "trace_context": {"traceparent": TRACEPARENT}}),
        "priority": "-5",
        "attempts": "2",
        "max_attempts": "3",
        "created_at": "1764660000.123456",
        "started_at": "1764660001.5",
        "completed_at": "1764660002.000001",
        "error": "",
        "worker_id": "w-1",
        "result": '{"answer":42,"nested":{"a":"\\u00e9\\n"}}',
        "progress": '{"done":1}',
    },
    {"id": "bare", "status": "pending"},
    {"id": "text", "status": "failed", "payload": "[1,2]", "result": "not json", "error": "boom"},
    {"id": "nulls", "status": "retrying", "payload": " {} ", "result": "null", "metadata": ""},
    {"id": "zero", "status": "cancelled", "created_at": "0", "started_at": "", "result": '"s"'},
]


@pytest.mark.parametrize("fields", HASHES, ids=[h["id"] for h in HASHES])
def test_ledger_row_of_a_hash_is_the_row_of_its_job(fields: dict[str, str]) -> None:
    assert stored_record_fields(StoredJob(fields)) == job_record_fields(job_from_hash(fields))


def test_ledger_row_reads_metadata_that_is_no_object_as_empty() -> None:
    # Its Job has no row (``job_record_fields`` fails): the row says what else the hash says.
    row = stored_record_fields(StoredJob({"id": "j", "status": "pending", "metadata": "[1]"}))
    assert (row["status"], row["job_type"], row["owner"]) == ("pending", "", "")


def _columns(job_id: str) -> dict[str, Any]:
    """Return a ledger row's columns as the database holds them (no conversion back)."""
    table = connection.ops.quote_name(JobRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE job_id = %s", [job_id])
        names = [column[0] for column in cursor.description]
        row = dict(zip(names, cursor.fetchone(), strict=True))
    skipped = {"id", "job_id", "recorded_at", "ledger_entry", "ledger_ms", "ledger_seq"}
    return {name: value for name, value in row.items() if name not in skipped}


@pytest.mark.django_db
@pytest.mark.parametrize("fields", HASHES[:4], ids=[h["id"] for h in HASHES[:4]])
def test_ledger_stores_the_columns_the_orm_stores(fields: dict[str, str]) -> None:
    job_id = fields["id"]
    store_events([LedgerEvent("debates", "5-0", job_id, "pending", StoredJob(fields))])
    orm = JobRecord.objects.create(**{**job_record_fields(job_from_hash(fields)), "job_id": "orm"})
    assert _columns(job_id) == _columns(orm.job_id)
