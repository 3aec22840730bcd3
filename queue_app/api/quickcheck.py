"""The common body of ``POST jobs/`` (a plain debate) checked without DRF's serializers.

Building and running ``JobCreateSerializer`` costs about ten times the enqueue itself, and a
bulk request runs it for each of up to 1,000 jobs. ``quick_check`` accepts the body of a debate
whose every value is already in its final form (strings trimmed, numbers of the right type,
within bounds), and returns exactly what the serializer would have validated. Anything else
(another job type, a webhook URL or origin, a value the serializer would trim, refuse or
convert) gets None, and the caller asks the serializer, whose answer, error messages included,
is then the answer.
"""

from __future__ import annotations

import re
from typing import Any

from queue_app.api.payloads import TEXT_PATTERN
from queue_app.api.serializers import PRIORITY_RANGE, QUEUE_NAME_PATTERN
from queue_app.queue import InvalidJob, QueueConfig, get_queue_config
from queue_app.queue.payloads import CONSENSUS_MODES, DEBATE_JOB_TYPE
from queue_app.services import jobs
from queue_app.services.scope import Scope

#: Keys of a ``POST jobs/`` body.
BODY_KEYS = frozenset({"job_type", "payload", "priority", "delay_seconds", "max_attempts", "queue"})
#: Keys of a debate payload that are checked here (``webhook_url`` and ``origin`` are not).
DEBATE_KEYS = frozenset(
    {"question", "agents", "rounds", "consensus", "protocol", "timeout_seconds"}
)
#: Longest agent name and protocol (``DebatePayloadSerializer``).
AGENT_MAX_CHARS, PROTOCOL_MAX_CHARS = 100, 64
#: ``max_attempts`` bounds of ``POST jobs/``.
ATTEMPTS_RANGE = (1, 10)
_text = re.compile(TEXT_PATTERN).search
_queue_name = re.compile(QUEUE_NAME_PATTERN).fullmatch  # not search: "$" passes "name\n"
_surrogate = re.compile("[\ud800-\udfff]").search


def quick_job(body: Any, scope: Scope) -> dict[str, Any] | None:
    """Return ``JobCreateSerializer``'s validated data of a plain debate body (the job built,
    ``validated_data["job"]``), or None to ask the serializer."""
    attrs = quick_check(body)
    if attrs is None:
        return None
    max_attempts = attrs.get("max_attempts") or get_queue_config().retry_max_attempts
    try:
        attrs["job"] = jobs.build_job(
            scope,
            DEBATE_JOB_TYPE,
            attrs["payload"],
            priority=attrs["priority"],
            max_attempts=max_attempts,
        )
    except InvalidJob:  # the serializer names the field
        return None
    return attrs


def quick_check(body: Any) -> dict[str, Any] | None:
    """Return the validated fields of a plain debate body, or None to ask the serializer."""
    if type(body) is not dict or body.get("job_type") != DEBATE_JOB_TYPE or body.keys() - BODY_KEYS:
        return None
    config = get_queue_config()
    options = _options(body, config)
    payload = _debate(body.get("payload"), config)
    if options is None or payload is None:
        return None
    return {"job_type": DEBATE_JOB_TYPE, "payload": payload, **options}


def _options(body: dict[str, Any], config: QueueConfig) -> dict[str, Any] | None:
    """Return priority, delay_seconds and the optional max_attempts and queue, or None."""
    priority = body.get("priority", 0)
    delay = body.get("delay_seconds", 0)
    if not _int_within(priority, *PRIORITY_RANGE) or not _number_within(
        delay, 0, config.job_ttl_seconds - 1
    ):
        return None
    # The serializer keeps a missing delay as the integer default, a given one as a float.
    options = {
        "priority": priority,
        "delay_seconds": float(delay) if "delay_seconds" in body else 0,
    }
    if "max_attempts" in body:
        if not _int_within(body["max_attempts"], *ATTEMPTS_RANGE):
            return None
        options["max_attempts"] = body["max_attempts"]
    if "queue" in body:
        queue = body["queue"]
        if not (type(queue) is str and _queue_name(queue) and config.declares(queue)):
            return None
        options["queue"] = queue
    return options


def _debate(payload: Any, config: QueueConfig) -> dict[str, Any] | None:
    """Return a debate payload as ``DebatePayloadSerializer`` validates it, or None."""
    if type(payload) is not dict or payload.keys() - DEBATE_KEYS or "question" not in payload:
        return None
    agents = payload.get("agents", [])
    checks = (
        _text_within(payload["question"], config.debate_max_question_chars),
        type(agents) is list
        and ("agents" not in payload or 1 <= len(agents) <= config.debate_max_agents)
        and all(_text_within(agent, AGENT_MAX_CHARS) for agent in agents),
        _int_within(payload.get("rounds", 1), 1, config.debate_max_rounds),
        payload.get("consensus", CONSENSUS_MODES[0]) in CONSENSUS_MODES,
        _text_within(payload.get("protocol", "standard"), PROTOCOL_MAX_CHARS),
        payload.get("timeout_seconds") is None or _int_within(payload["timeout_seconds"], 1, None),
    )
    return dict(payload) if all(checks) else None


def _text_within(value: Any, max_chars: int) -> bool:
    """Tell whether ``value`` is a trimmed string, not blank, no NUL, of ``max_chars`` at most."""
    return (
        type(value) is str
        and len(value) <= max_chars
        and value == value.strip()
        and _text(value) is not None
        and (value.isascii() or _surrogate(value) is None)
    )


def _int_within(value: Any, low: int, high: int | None) -> bool:
    return type(value) is int and low <= value and (high is None or value <= high)


def _number_within(value: Any, low: float, high: float) -> bool:
    return type(value) in (int, float) and low <= value <= high
