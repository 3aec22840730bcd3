"""Debate job payloads and results, and the helpers that build debate jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .base import Job
from .config import get_queue_config
from .errors import InvalidJob
from .origin import ORIGIN_KEY, DebateOrigin

CONSENSUS_MODES = ("majority", "unanimous", "judge")
DEFAULT_AGENTS = ("anthropic-api", "openai-api")
DEBATE_JOB_TYPE = "debate"
#: Queue of debate jobs (``DebateWorker.QUEUE_NAME``).
DEBATE_QUEUE = "debates"
#: Characters of the question kept in ``Job.metadata["question_preview"]``.
QUESTION_PREVIEW_CHARS = 100


# Positional like the reference's dataclasses (its examples build them so).
@dataclass(frozen=True, slots=True)
class DebateJobPayload:
    """Input of a debate job."""

    question: str
    #: Agent adapter names, e.g. ``["anthropic-api", "openai-api"]``.
    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS))
    rounds: int = 9
    consensus: str = "majority"
    protocol: str = "standard"
    timeout_seconds: int | None = None
    webhook_url: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    #: The caller's free-form data (the reference keeps it in the payload).
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the payload as a JSON-serialisable dict (what ``dataclasses.asdict`` returns,
        built without its generic walk when every value is JSON)."""
        try:
            return {name: _json_copy(getattr(self, name)) for name in _PAYLOAD_FIELDS}
        except _NotJson:
            return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebateJobPayload:
        """Build a payload from a dict, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


#: Field names of ``DebateJobPayload``, in order.
_PAYLOAD_FIELDS = tuple(f.name for f in fields(DebateJobPayload))
_JSON_ATOMS = (str, int, float, bool, type(None))


class _NotJson(Exception):
    """A value is not plain JSON (``dataclasses.asdict`` copies it its own way)."""


def _json_copy(value: Any) -> Any:
    """Copy a JSON value as ``dataclasses.asdict`` does: lists and dicts anew, atoms as is."""
    kind = type(value)
    if kind in _JSON_ATOMS:
        return value
    if kind is list:
        return [_json_copy(item) for item in value]
    if kind is dict:
        return {_json_copy(key): _json_copy(item) for key, item in value.items()}
    raise _NotJson


@dataclass(frozen=True, slots=True)
class DebateResult:
    """Outcome of one debate."""

    debate_id: str
    consensus_reached: bool
    final_answer: str | None
    confidence: float
    rounds_used: int
    participants: list[str]
    duration_seconds: float
    token_usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebateResult:
        """Build a result from ``to_dict`` output; only ``debate_id`` and ``consensus_reached``
        are required.

        Raises:
            InvalidJob: a required key is missing.
        """
        missing = [key for key in ("debate_id", "consensus_reached") if key not in data]
        if missing:
            raise InvalidJob(f"debate result lacks {', '.join(missing)}")
        return cls(
            debate_id=str(data["debate_id"]),
            consensus_reached=bool(data["consensus_reached"]),
            final_answer=data.get("final_answer"),
            confidence=float(data.get("confidence") or 0.0),
            rounds_used=int(data.get("rounds_used") or 0),
            participants=list(data.get("participants") or []),
            duration_seconds=float(data.get("duration_seconds") or 0.0),
            token_usage=dict(data.get("token_usage") or {}),
            error=data.get("error"),
        )


def _validate(payload: DebateJobPayload) -> None:
    limits = get_queue_config()
    if not isinstance(payload.question, str) or not payload.question.strip():
        raise InvalidJob("question must be a non-empty string")
    if len(payload.question) > limits.debate_max_question_chars:
        raise InvalidJob(f"question must be at most {limits.debate_max_question_chars} characters")
    if isinstance(payload.rounds, bool) or not isinstance(payload.rounds, int):
        raise InvalidJob("rounds must be an integer")
    if not 1 <= payload.rounds <= limits.debate_max_rounds:
        raise InvalidJob(f"rounds must be between 1 and {limits.debate_max_rounds}")
    if payload.consensus not in CONSENSUS_MODES:
        raise InvalidJob(f"consensus must be one of {', '.join(CONSENSUS_MODES)}")
    if (
        not isinstance(payload.agents, list)
        or not payload.agents
        or not all(isinstance(a, str) and a for a in payload.agents)
    ):
        raise InvalidJob("agents must be a non-empty list of agent names")
    if len(payload.agents) > limits.debate_max_agents:
        raise InvalidJob(f"agents must list at most {limits.debate_max_agents} agents")
    if payload.timeout_seconds is not None and payload.timeout_seconds <= 0:
        raise InvalidJob("timeout_seconds must be positive")
    if not isinstance(payload.metadata, dict):
        raise InvalidJob("metadata must be an object")


def create_debate_job(
    question: str,
    agents: list[str] | None = None,
    rounds: int = 9,
    consensus: str = "majority",
    protocol: str = "standard",
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: int | None = None,
    webhook_url: str | None = None,
    user_id: str | None = None,
    organization_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    origin: DebateOrigin | Mapping[str, Any] | None = None,
) -> Job:
    """Build a debate job; invalid input raises ``ValueError`` (``InvalidJob``).

    Rounds, agents and question length are bounded by the config (``debate_max_*``); a job
    without ``timeout_seconds`` gets ``debate_timeout_seconds``. ``origin`` (platform and
    target, see ``queue_app.queue.origin``) is where the result is routed when the debate
    finishes; it is kept in the job's metadata, not its payload.

    The caller's ``metadata`` goes into the payload (as the reference does) and into the job's
    metadata, where ``owner``/``organization`` scope it; the job's metadata also holds the job
    type and the first 100 characters of the question (``question_preview``).
    """
    if max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    if timeout_seconds is None:
        timeout_seconds = get_queue_config().debate_timeout_seconds
    payload = DebateJobPayload(
        question=question,
        agents=list(agents) if agents is not None else list(DEFAULT_AGENTS),
        rounds=rounds,
        consensus=consensus,
        protocol=protocol,
        timeout_seconds=timeout_seconds,
        webhook_url=webhook_url,
        user_id=user_id,
        organization_id=organization_id,
        metadata=dict(metadata or {}),
    )
    extra = {ORIGIN_KEY: DebateOrigin.from_value(origin).to_dict()} if origin is not None else {}
    return Job(
        payload=payload.to_dict(),
        priority=priority,
        max_attempts=max_attempts,
        metadata={
            **(metadata or {}),
            **extra,
            "job_type": DEBATE_JOB_TYPE,
            "question_preview": question[:QUESTION_PREVIEW_CHARS],
        },
    )


def get_debate_payload(job: Job) -> DebateJobPayload:
    """Read the debate payload of a job; a malformed payload raises ``InvalidJob``."""
    try:
        return DebateJobPayload.from_dict(job.payload)
    except TypeError as error:
        raise InvalidJob(f"invalid debate payload: {error}") from error
