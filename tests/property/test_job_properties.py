"""Properties of Job serialisation and RetryPolicy delays."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_app.queue import Job, JobStatus, RetryPolicy
from queue_app.queue.retry import JITTER_FRACTION

PROPERTY_SETTINGS = settings(max_examples=200, derandomize=True, database=None, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=5)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
texts = st.text(min_size=1)

jobs = st.builds(
    Job,
    payload=json_objects,
    id=texts,
    status=st.sampled_from(JobStatus),
    created_at=times,
    started_at=st.none() | times,
    completed_at=st.none() | times,
    attempts=st.integers(0, 100),
    max_attempts=st.integers(1, 100),
    error=st.none() | texts,
    worker_id=st.none() | texts,
    priority=st.integers(-1000, 1000),
    metadata=json_objects,
    result=json_values,
    queue=st.none() | texts,
    progress=json_values,
)


@PROPERTY_SETTINGS
@given(jobs)
def test_job_round_trips_through_dict_and_json(job: Job) -> None:
    assert Job.from_dict(job.to_dict()) == job
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


@PROPERTY_SETTINGS
@given(jobs)
def test_job_created_at_zero_is_kept(job: Job) -> None:
    job.created_at = 0.0
    assert Job.from_dict(job.to_dict()).created_at == 0.0


policies = st.builds(
    RetryPolicy,
    base_delay_seconds=st.floats(0.001, 100),
    max_delay_seconds=st.floats(0.001, 1000),
    exponential_base=st.floats(1, 4),
    jitter=st.booleans(),
)


@PROPERTY_SETTINGS
@given(policies, st.integers(-3, 60))
def test_retry_delay_stays_within_jitter_of_the_capped_backoff(
    policy: RetryPolicy, attempt: int
) -> None:
    nominal = min(
        policy.base_delay_seconds * policy.exponential_base ** max(attempt, 0),
        policy.max_delay_seconds,
    )
    spread = JITTER_FRACTION if policy.jitter else 0.0
    delay = policy.get_delay(attempt)
    assert nominal * (1 - spread) * (1 - 1e-9) <= delay <= policy.max_delay_seconds
    assert delay <= nominal * (1 + spread) * (1 + 1e-9)


@PROPERTY_SETTINGS
@given(policies, st.integers(0, 59))
def test_retry_delay_without_jitter_grows_to_the_cap(policy: RetryPolicy, attempt: int) -> None:
    steady = RetryPolicy(
        base_delay_seconds=policy.base_delay_seconds,
        max_delay_seconds=policy.max_delay_seconds,
        exponential_base=policy.exponential_base,
        jitter=False,
    )
    assert steady.get_delay(attempt) <= steady.get_delay(attempt + 1) <= steady.max_delay_seconds
    assert steady.get_delay(0) == min(steady.base_delay_seconds, steady.max_delay_seconds)
