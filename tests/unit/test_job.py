"""Job transitions, serialisation and debate payloads."""

from __future__ import annotations

import uuid
from dataclasses import asdict

import pytest

from queue_app.queue import (
    DebateJobPayload,
    DebateResult,
    Job,
    JobStatus,
    create_debate_job,
    get_debate_payload,
)
from queue_app.queue.redis.keys import JOB_FIELDS
from queue_app.queue.redis.status import job_from_hash, job_from_values


def test_job_statuses_are_lowercase_strings() -> None:
    assert [s.value for s in JobStatus] == [
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
        "retrying",
    ]


def test_job_ids_are_distinct_random_uuids_in_canonical_text() -> None:
    ids = [Job(payload={}).id for _ in range(4000)]

    parsed = [uuid.UUID(job_id) for job_id in ids]
    assert len(set(ids)) == len(ids)
    assert all(str(u) == job_id for u, job_id in zip(parsed, ids, strict=True))
    assert {u.version for u in parsed} == {4} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert {job_id[19] for job_id in ids} == set("89ab")  # the variant's two free bits vary
    assert {job_id[15] for job_id in ids} == set("0123456789abcdef")


def test_job_transitions_update_fields() -> None:
    job = Job(payload={"a": 1}, max_attempts=2)
    assert job.status is JobStatus.PENDING and len(job.id) == 36
    job.mark_processing("w1")
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.PROCESSING, "w1", 1)
    job.mark_retrying("flaky")
    assert job.status is JobStatus.RETRYING and job.should_retry()
    job.mark_processing("w1")
    assert not job.should_retry()
    job.mark_failed("dead")
    assert job.status is JobStatus.FAILED and job.completed_at is not None
    done = Job(payload={})
    done.mark_completed({"ok": True})
    assert done.status is JobStatus.COMPLETED and done.result == {"ok": True}


def test_to_dict_round_trips() -> None:
    job = Job(payload={"q": "x"}, priority=3, metadata={"job_type": "debate"})
    job.mark_processing("w")
    copy = Job.from_dict(job.to_dict())
    assert copy == job
    assert job.to_dict()["status"] == "processing"


def test_create_debate_job_builds_payload_and_metadata() -> None:
    job = create_debate_job(
        "Should we?", agents=["demo"], rounds=3, priority=2, max_attempts=5, metadata={"t": 1}
    )
    assert (job.priority, job.max_attempts) == (2, 5)
    assert job.metadata == {"t": 1, "job_type": "debate", "question_preview": "Should we?"}
    payload = get_debate_payload(job)
    assert payload == DebateJobPayload(
        question="Should we?", agents=["demo"], rounds=3, timeout_seconds=1800, metadata={"t": 1}
    )
    assert create_debate_job("q").payload["agents"] == ["anthropic-api", "openai-api"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"question": "  "}, "question"),
        ({"question": "q", "rounds": 0}, "rounds"),
        ({"question": "q", "consensus": "vote"}, "consensus"),
        ({"question": "q", "agents": ["", 3]}, "agents"),
        ({"question": "q", "agents": []}, "agents"),
        ({"question": "q", "max_attempts": 0}, "max_attempts"),
    ],
)
def test_create_debate_job_rejects_invalid_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_debate_job(**kwargs)


def test_get_debate_payload_rejects_malformed_payload() -> None:
    with pytest.raises(ValueError, match="invalid debate payload"):
        get_debate_payload(Job(payload={"rounds": 2}))


def test_question_preview_keeps_the_first_hundred_characters() -> None:
    job = create_debate_job("x" * 150)
    assert job.metadata["question_preview"] == "x" * 100


def test_payload_dataclasses_build_positionally_as_the_reference_examples() -> None:
    payload = DebateJobPayload("Microservices?", ["demo-a", "demo-b"], 3, "majority")
    assert (payload.rounds, payload.consensus, payload.metadata) == (3, "majority", {})
    result = DebateResult("d-1", True, "yes", 0.9, 2, ["demo-a"], 1.5, {"input": 3}, None)
    assert DebateResult.from_dict(result.to_dict()) == result
    assert len(result.to_dict()) == 9


def test_debate_result_from_dict_needs_only_id_and_consensus() -> None:
    result = DebateResult.from_dict({"debate_id": "d-1", "consensus_reached": False})
    assert (result.final_answer, result.confidence, result.rounds_used) == (None, 0.0, 0)
    assert (result.participants, result.token_usage, result.error) == ([], {}, None)
    with pytest.raises(ValueError, match="consensus_reached"):
        DebateResult.from_dict({"debate_id": "d-1"})


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"team": "a", "tags": ["x", {"deep": [1, 2.5, None, True]}]},
        {"pair": (1, 2)},  # not JSON: copied as asdict copies it
        {"point": DebateResult("d", True, None, 0.5, 1, ["a"], 1.0)},
    ],
)
def test_debate_payload_to_dict_is_asdict_with_fresh_containers(metadata: dict) -> None:
    payload = DebateJobPayload("Why?", ["a", "b"], 2, metadata=metadata)
    copied = payload.to_dict()
    assert copied == asdict(payload)
    assert list(copied) == list(asdict(payload))
    assert copied["agents"] is not payload.agents
    assert copied["metadata"] is not payload.metadata


def test_a_job_is_built_from_every_field_of_its_hash_as_bytes_or_text() -> None:
    fields = {
        "id": "j-1",
        "queue": "debates",
        "status": "processing",
        "payload": '{"topic": "x"}',
        "metadata": '{"job_type": "debate"}',
        "priority": "5",
        "attempts": "2",
        "max_attempts": "4",
        "created_at": "100.5",
        "started_at": "101.25",
        "completed_at": "102.0",
        "error": "TimeoutError: slow",
        "worker_id": "w-1",
        "result": '{"ok": true}',
        "progress": "0.5",
        "stream": "5",
        "token": "1-0/2",
    }
    assert list(fields) == list(JOB_FIELDS)

    job = job_from_hash(fields)

    assert job == Job(
        payload={"topic": "x"},
        id="j-1",
        status=JobStatus.PROCESSING,
        created_at=100.5,
        started_at=101.25,
        completed_at=102.0,
        attempts=2,
        max_attempts=4,
        error="TimeoutError: slow",
        worker_id="w-1",
        priority=5,
        metadata={"job_type": "debate"},
        result={"ok": True},
        queue="debates",
        progress=0.5,
    )
    assert job_from_values([value.encode() for value in fields.values()]) == job


def test_a_job_built_from_a_partial_hash_takes_the_defaults() -> None:
    job = job_from_hash({"id": "j-2", "payload": '"text"'})

    assert (job.payload, job.status, job.attempts, job.metadata) == (
        {"raw": "text"},
        JobStatus.PENDING,
        0,
        {},
    )
    assert (job.started_at, job.queue, job.result) == (None, None, None)
    with pytest.raises(KeyError):
        job_from_hash({"status": "pending"})
