"""The reference's healing types: actions, reasons, candidates, results and the configuration."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from queue_app.queue import ConfigError


class HealingAction(StrEnum):
    """What healing does about a debate (values are the names in lower case)."""

    RE_DEBATE = "re_debate"
    EXTEND_ROUNDS = "extend_rounds"
    ADD_MEDIATOR = "add_mediator"
    NOTIFY_USER = "notify_user"
    ARCHIVE = "archive"
    ESCALATE = "escalate"


class HealingReason(StrEnum):
    """Why a debate needs healing."""

    NO_CONSENSUS = "no_consensus"
    STALLED = "stalled"
    DIVERGING = "diverging"
    TIMEOUT = "timeout"
    ERROR = "error"
    LOW_QUALITY = "low_quality"


@dataclass
class HealingCandidate:
    """A finished debate that needs healing, and what the scan learnt about it."""

    debate_id: str
    #: The debate's question.
    task: str
    reason: HealingReason
    #: Unix times.
    created_at: float
    completed_at: float | None
    rounds_completed: int
    agent_count: int
    consensus_probability: float = 0.0
    #: converging, diverging, stable or unknown (from the agreement of each round).
    convergence_trend: str = "unknown"
    #: error, timed_out, attempts, root_debate_id, owner, organization.
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the candidate as JSON data."""
        return {**asdict(self), "reason": self.reason.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealingCandidate:
        """Build a candidate from ``to_dict`` output."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        return cls(**{**values, "reason": HealingReason(data["reason"])})


@dataclass
class HealingResult:
    """What one healing attempt did."""

    debate_id: str
    action: HealingAction
    success: bool
    message: str
    #: The debate enqueued to replace the healed one (re-debate, more rounds, mediator).
    new_debate_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON data."""
        return {**asdict(self), "action": self.action.value}


#: Environment variable of each ``HealingConfig`` field (``aragora_site/settings.py`` reads them).
ENV_VARS = {
    "scan_interval_seconds": "ARAGORA_HEALING_SCAN_INTERVAL",
    "min_age_for_healing_seconds": "ARAGORA_HEALING_MIN_AGE",
    "max_age_for_healing_seconds": "ARAGORA_HEALING_MAX_AGE",
    "consensus_threshold": "ARAGORA_HEALING_CONSENSUS_THRESHOLD",
    "min_rounds_for_redebate": "ARAGORA_HEALING_MIN_ROUNDS",
    "max_healing_attempts": "ARAGORA_HEALING_MAX_ATTEMPTS",
    "auto_redebate_enabled": "ARAGORA_HEALING_AUTO_REDEBATE",
    "notify_on_stuck": "ARAGORA_HEALING_NOTIFY",
    "archive_after_max_attempts": "ARAGORA_HEALING_ARCHIVE",
    "extend_rounds_by": "ARAGORA_HEALING_EXTEND_ROUNDS_BY",
    "mediator_agent": "ARAGORA_HEALING_MEDIATOR",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class HealingConfig:
    """When and how debates are healed (the reference's fields, plus how to heal)."""

    scan_interval_seconds: float = 300.0
    min_age_for_healing_seconds: float = 3600.0
    max_age_for_healing_seconds: float = 604_800.0
    consensus_threshold: float = 0.6
    min_rounds_for_redebate: int = 3
    max_healing_attempts: int = 3
    auto_redebate_enabled: bool = False
    notify_on_stuck: bool = True
    archive_after_max_attempts: bool = True
    #: Rounds added by EXTEND_ROUNDS.
    extend_rounds_by: int = 2
    #: Agent added as judge by ADD_MEDIATOR (None: the debate's first agent judges).
    mediator_agent: str | None = None

    def __post_init__(self) -> None:
        if self.scan_interval_seconds <= 0:
            raise ConfigError("scan_interval_seconds must be positive")
        if not 0 <= self.min_age_for_healing_seconds <= self.max_age_for_healing_seconds:
            raise ConfigError(
                "min_age_for_healing_seconds must be between 0 and max_age_for_healing_seconds"
            )
        if not 0 <= self.consensus_threshold <= 1:
            raise ConfigError("consensus_threshold must be between 0 and 1")
        for name in ("min_rounds_for_redebate", "max_healing_attempts", "extend_rounds_by"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HealingConfig:
        """Read the ``ARAGORA_HEALING_*`` variables ``environ`` holds; unset ones keep defaults.

        Raises:
            ConfigError: naming the variable whose value is malformed or out of range.
        """
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = (environ.get(ENV_VARS[item.name]) or "").strip()
            if raw:
                values[item.name] = _convert(ENV_VARS[item.name], raw, item.default)
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(_variables_named(str(error))) from None


def _variables_named(message: str) -> str:
    """Return ``message`` with each field name replaced by its environment variable."""
    for name in sorted(ENV_VARS, key=len, reverse=True):
        message = message.replace(name, ENV_VARS[name])
    return message


def _convert(name: str, raw: str, default: Any) -> Any:
    if default is None or isinstance(default, str):
        return raw
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    try:
        return type(default)(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
