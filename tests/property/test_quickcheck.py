"""The quick check of ``POST jobs/`` bodies accepts only what the serializer accepts, as it does."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from queue_app.api.quickcheck import quick_job
from queue_app.api.serializers import JobCreateSerializer
from queue_app.queue import Job
from queue_app.services.scope import Scope

PROPERTY_SETTINGS = settings(max_examples=600, derandomize=True, database=None, deadline=None)
SCOPE = Scope(user_id="7", organization="acme")
PLAIN = {
    "job_type": "debate",
    "payload": {"question": "Is Redis a database?", "agents": ["a", "b"], "rounds": 3},
}

ODD_TEXTS = [" padded ", "", "   ", "a\x00b", "\ufeff", "x" * 101, "line\n", "\ud800", "\u2028x"]
ODD = [-1, 0, 11, 101, 1.5, -0.5, 1e12, float("nan"), True, None, "3", [], {}]
#: Keys the quick check leaves to the serializer (in the body, or in the payload).
EXTRA_KEYS = [{"extra": 1}, {"webhook_url": "https://example.com/hook"}, {"metadata": {}}]


def bodies(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Return bodies near a plain debate: each key absent or usual, and with ``odd`` one time in
    four an odd value or key."""
    unusual = st.sampled_from(ODD) if odd else st.nothing()

    def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = unusual) -> Any:
        return st.one_of(usual, usual, usual, other)

    texts = mostly(
        st.text(min_size=1, max_size=12).map(str.strip).filter(bool),
        st.sampled_from(ODD_TEXTS) if odd else st.nothing(),
    )
    payload = st.fixed_dictionaries(
        {"question": mostly(texts)},
        optional={
            "agents": mostly(st.lists(texts, max_size=5)),
            "rounds": mostly(st.integers(0, 12)),
            "consensus": mostly(st.sampled_from(["majority", "unanimous", "judge", "vote"])),
            "protocol": mostly(texts),
            "timeout_seconds": mostly(st.integers(0, 10**6)),
        },
    )
    extra = mostly(st.just({}), st.sampled_from(EXTRA_KEYS) if odd else st.nothing())
    return st.fixed_dictionaries(
        {"job_type": mostly(st.just("debate"), texts), "payload": mostly(payload), "extra": extra},
        optional={
            "priority": mostly(st.integers(-100, 100)),
            "delay_seconds": mostly(st.floats(0, 1e7) | st.integers(0, 1000)),
            "max_attempts": mostly(st.integers(1, 10)),
            "queue": mostly(st.sampled_from(["debates", "tasks", "nowhere", "bad name"])),
        },
    ).map(_place_extra)


def _place_extra(body: dict[str, Any]) -> dict[str, Any]:
    extra, payload = body.pop("extra"), body["payload"]
    (payload if isinstance(payload, dict) and "extra" not in extra else body).update(extra)
    return body


def job_fields(job: Job) -> tuple[Any, ...]:
    """Return what a job carries, without what is new for every job (id, times)."""
    return (job.job_type, job.payload, job.priority, job.max_attempts, job.metadata)


def without_job(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "job"}


@PROPERTY_SETTINGS
@given(bodies(odd=True) | bodies(odd=False))
def test_quick_job_agrees_with_the_serializer(body: dict[str, Any]) -> None:
    quick = quick_job(body, SCOPE)
    event(f"quick: {quick is not None}")
    if quick is None:
        return
    serializer = JobCreateSerializer(data=body, context={"scope": SCOPE})
    assert serializer.is_valid(), serializer.errors
    assert without_job(quick) == without_job(dict(serializer.validated_data))
    assert type(quick["delay_seconds"]) is type(serializer.validated_data["delay_seconds"])
    assert job_fields(quick["job"]) == job_fields(serializer.validated_data["job"])


def test_quick_job_takes_plain_debates_with_options() -> None:
    body = {**PLAIN, "priority": 5, "delay_seconds": 2, "max_attempts": 2, "queue": "debates"}
    quick = quick_job(body, SCOPE)
    assert quick is not None
    assert (quick["delay_seconds"], quick["queue"], quick["job"].max_attempts) == (
        2.0,
        "debates",
        2,
    )


def test_quick_job_leaves_other_bodies_to_the_serializer() -> None:
    assert quick_job({**PLAIN, "job_type": "gauntlet"}, SCOPE) is None
    assert quick_job({**PLAIN, "payload": {"question": " padded "}}, SCOPE) is None
    assert quick_job([PLAIN], SCOPE) is None
