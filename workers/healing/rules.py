"""Which debates need healing, why, and what to do: pure functions (the reference's rules).

Reason, first match: an error; a diverging trend; consensus probability below 0.3; a timeout;
probability below the threshold (low quality); otherwise stalled. Action, first match: archive
(or escalate) once the attempts reach ``max_healing_attempts - 1``; notify on an error; a
mediator when diverging; after a timeout, more rounds unless enough rounds ran (then re-debate
when automatic, else notify); re-debate (automatic) or notify without consensus; more rounds
for low quality; otherwise notify.
"""

from __future__ import annotations

from typing import Any

from queue_app.queue import DebateResult

from .store import FinishedDebate
from .types import HealingAction, HealingCandidate, HealingConfig, HealingReason

#: Below this consensus probability a debate has no consensus at all (the reference's bound).
NO_CONSENSUS_BELOW = 0.3


def trend_of(agreement: list[float]) -> str:
    """Return converging, diverging or stable from the agreement of each round (unknown < 2)."""
    if len(agreement) < 2:
        return "unknown"
    if agreement[-1] > agreement[0]:
        return "converging"
    return "diverging" if agreement[-1] < agreement[0] else "stable"


def candidate_of(
    debate: FinishedDebate, progress: Any, config: HealingConfig
) -> HealingCandidate | None:
    """Return the healing candidate of a finished debate, or None when it reached consensus.

    ``progress`` is the debate's last reported progress (``agreement`` per round), if known.
    """
    agreement = _agreement(progress)
    timed_out = debate.status == "failed" and debate.error.startswith("TimeoutError")
    error = debate.error if debate.status == "failed" and not timed_out else None
    if debate.status == "completed":
        result = DebateResult.from_dict({"debate_id": debate.debate_id, **(debate.result or {})})
        if result.consensus_reached:
            return None
        probability, rounds = result.confidence, result.rounds_used
    else:
        probability, rounds = (agreement[-1] if agreement else 0.0), len(agreement)
    candidate = HealingCandidate(
        debate_id=debate.debate_id,
        task=str(debate.payload.get("question") or ""),
        reason=HealingReason.STALLED,
        created_at=debate.created_at,
        completed_at=debate.completed_at,
        rounds_completed=rounds,
        agent_count=len(debate.payload.get("agents") or []),
        consensus_probability=round(probability, 4),
        convergence_trend=trend_of(agreement),
        metadata={
            "error": error,
            "timed_out": timed_out,
            "attempts": debate.attempts,
            "root_debate_id": debate.root_debate_id,
            "owner": debate.owner,
            "organization": debate.organization,
        },
    )
    candidate.reason = choose_reason(candidate, config)
    return candidate


def _agreement(progress: Any) -> list[float]:
    found = progress.get("agreement") if isinstance(progress, dict) else None
    return [float(share) for share in found] if isinstance(found, list) else []


def choose_reason(candidate: HealingCandidate, config: HealingConfig) -> HealingReason:
    """Return why ``candidate`` needs healing (first matching rule)."""
    if candidate.metadata.get("error"):
        return HealingReason.ERROR
    if candidate.convergence_trend == "diverging":
        return HealingReason.DIVERGING
    if candidate.consensus_probability < NO_CONSENSUS_BELOW:
        return HealingReason.NO_CONSENSUS
    if candidate.metadata.get("timed_out"):
        return HealingReason.TIMEOUT
    if candidate.consensus_probability < config.consensus_threshold:
        return HealingReason.LOW_QUALITY
    return HealingReason.STALLED


def choose_action(
    candidate: HealingCandidate, attempts: int, config: HealingConfig
) -> HealingAction:
    """Return what to do about ``candidate`` after ``attempts`` earlier healings."""
    automatic = HealingAction.RE_DEBATE if config.auto_redebate_enabled else None
    if attempts >= config.max_healing_attempts - 1:
        archive = config.archive_after_max_attempts
        return HealingAction.ARCHIVE if archive else HealingAction.ESCALATE
    match candidate.reason:
        case HealingReason.ERROR:
            return HealingAction.NOTIFY_USER
        case HealingReason.DIVERGING:
            return HealingAction.ADD_MEDIATOR
        case HealingReason.TIMEOUT if candidate.rounds_completed < config.min_rounds_for_redebate:
            return HealingAction.EXTEND_ROUNDS
        case HealingReason.TIMEOUT | HealingReason.NO_CONSENSUS:
            return automatic or HealingAction.NOTIFY_USER
        case HealingReason.LOW_QUALITY:
            return HealingAction.EXTEND_ROUNDS
    return HealingAction.NOTIFY_USER
