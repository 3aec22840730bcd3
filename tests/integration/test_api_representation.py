"""Job answers of the API: built directly, equal to what ``JobSerializer`` makes of the job."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from queue_app.api.representation import job_representation
from queue_app.api.serializers import JobSerializer
from queue_app.queue import Job, JobStatus

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def jobs_in_every_state() -> list[Job]:
    """Return jobs with every field unset, set, zero or odd."""
    fresh = Job(payload={"question": "q?"}, metadata={"job_type": "debate"})
    running = Job(payload={}, status=JobStatus.PROCESSING, started_at=1.5e9, worker_id="w-1")
    running.progress = {"round": 2, "of": 3}
    done = Job(
        payload={"nested": [1, {"a": None}]},
        status=JobStatus.COMPLETED,
        created_at=0.0,
        started_at=1_700_000_000.123456,
        completed_at=1_700_000_001.5,
        attempts=2,
        max_attempts=5,
        priority=-7,
        result={"answer": "yes", "score": 0.5},
        queue="debates",
        metadata={"job_type": "gauntlet", "trace_context": {"traceparent": TRACEPARENT}},
    )
    failed = Job(payload={}, status=JobStatus.FAILED, error="Boom: ünïcode", queue="tasks")
    odd = Job(payload={}, metadata={"trace_context": "not a dict"}, result=[1, 2], progress=0)
    return [fresh, running, done, failed, odd, *_each_status()]


def _each_status() -> list[Job]:
    return [Job(payload={"i": index}, status=status) for index, status in enumerate(JobStatus)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_job_representation_is_the_serializers(zone: str) -> None:
    serializer = JobSerializer()
    with timezone.override(zone):
        for job in jobs_in_every_state():
            direct, drf = job_representation(job), dict(serializer.to_representation(job))
            assert direct == drf
            assert list(direct) == list(drf)  # same key order, same JSON text
            assert JSONRenderer().render(direct) == JSONRenderer().render(drf)
            assert [type(value) for value in direct.values()] == [
                type(value) for value in drf.values()
            ]


def test_job_representation_renders_timestamps_in_utc_with_z() -> None:
    job = Job(payload={}, created_at=1_700_000_000.0)
    answer = json.loads(JSONRenderer().render(job_representation(job)))
    assert answer["created_at"] == "2023-11-14T22:13:20Z"
    assert answer["status"] == "pending" and answer["trace_id"] == ""
