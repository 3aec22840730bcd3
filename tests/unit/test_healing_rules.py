"""Consensus healing rules: candidates, reasons, actions and configuration (pure code)."""

from __future__ import annotations

from typing import Any

import pytest

from workers.healing import (
    FinishedDebate,
    HealingAction,
    HealingCandidate,
    HealingConfig,
    HealingReason,
    HealingResult,
    candidate_of,
    choose_action,
    choose_reason,
    rerun_payload,
    trend_of,
)

CONFIG = HealingConfig()


def candidate(reason: HealingReason = HealingReason.STALLED, **changes: Any) -> HealingCandidate:
    values: dict[str, Any] = {
        "debate_id": "d-1",
        "task": "Tabs?",
        "reason": reason,
        "created_at": 1.0,
        "completed_at": 2.0,
        "rounds_completed": 2,
        "agent_count": 2,
        "consensus_probability": 0.5,
        "metadata": {},
    }
    return HealingCandidate(**{**values, **changes})


def debate(**changes: Any) -> FinishedDebate:
    values: dict[str, Any] = {
        "debate_id": "d-1",
        "status": "completed",
        "payload": {"question": "Tabs?", "agents": ["a", "b"], "rounds": 2},
        "result": {"consensus_reached": False, "confidence": 0.4, "rounds_used": 2},
        "error": "",
        "created_at": 1.0,
        "completed_at": 2.0,
        "owner": "7",
        "organization": "acme",
        "root_debate_id": "d-1",
        "attempts": 0,
    }
    return FinishedDebate(**{**values, **changes})


def test_enum_values_are_the_member_names_in_lower_case() -> None:
    for enum in (HealingAction, HealingReason):
        assert all(member.value == member.name.lower() for member in enum)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"metadata": {"error": "boom"}, "convergence_trend": "diverging"}, HealingReason.ERROR),
        ({"convergence_trend": "diverging", "consensus_probability": 0.1}, "diverging"),
        ({"consensus_probability": 0.29, "metadata": {"timed_out": True}}, "no_consensus"),
        ({"consensus_probability": 0.5, "metadata": {"timed_out": True}}, "timeout"),
        ({"consensus_probability": 0.59}, HealingReason.LOW_QUALITY),
        ({"consensus_probability": 0.6}, HealingReason.STALLED),
    ],
)
def test_reason_is_the_first_matching_rule(changes: dict[str, Any], expected: str) -> None:
    assert choose_reason(candidate(**changes), CONFIG) == expected


@pytest.mark.parametrize(
    ("reason", "rounds", "auto", "expected"),
    [
        (HealingReason.ERROR, 2, True, HealingAction.NOTIFY_USER),
        (HealingReason.DIVERGING, 2, False, HealingAction.ADD_MEDIATOR),
        (HealingReason.TIMEOUT, 2, True, HealingAction.EXTEND_ROUNDS),
        (HealingReason.TIMEOUT, 3, True, HealingAction.RE_DEBATE),
        (HealingReason.TIMEOUT, 3, False, HealingAction.NOTIFY_USER),
        (HealingReason.NO_CONSENSUS, 5, True, HealingAction.RE_DEBATE),
        (HealingReason.NO_CONSENSUS, 5, False, HealingAction.NOTIFY_USER),
        (HealingReason.LOW_QUALITY, 5, False, HealingAction.EXTEND_ROUNDS),
        (HealingReason.STALLED, 5, True, HealingAction.NOTIFY_USER),
    ],
)
def test_action_follows_the_reason(
    reason: HealingReason, rounds: int, auto: bool, expected: HealingAction
) -> None:
    config = HealingConfig(auto_redebate_enabled=auto)
    assert choose_action(candidate(reason, rounds_completed=rounds), 0, config) == expected


def test_last_attempt_archives_or_escalates() -> None:
    low = candidate(HealingReason.LOW_QUALITY)
    assert choose_action(low, 1, CONFIG) == HealingAction.EXTEND_ROUNDS
    assert choose_action(low, 2, CONFIG) == HealingAction.ARCHIVE
    no_archive = HealingConfig(archive_after_max_attempts=False)
    assert choose_action(low, 2, no_archive) == HealingAction.ESCALATE


def test_trend_compares_the_first_and_last_round() -> None:
    assert trend_of([]) == "unknown" and trend_of([0.5]) == "unknown"
    assert trend_of([0.5, 1.0]) == "converging"
    assert trend_of([0.67, 0.33]) == "diverging"
    assert trend_of([0.5, 0.5]) == "stable"


def test_candidate_of_a_debate_without_consensus() -> None:
    found = candidate_of(debate(), {"agreement": [0.5, 0.5]}, CONFIG)
    assert found is not None
    assert (found.reason, found.consensus_probability) == (HealingReason.LOW_QUALITY, 0.4)
    assert (found.rounds_completed, found.agent_count, found.convergence_trend) == (2, 2, "stable")
    assert found.metadata["organization"] == "acme"
    assert HealingCandidate.from_dict(found.to_dict()) == found


def test_candidate_of_failed_and_timed_out_debates() -> None:
    failed = candidate_of(debate(status="failed", error="AgentRejected: no key"), None, CONFIG)
    assert failed is not None and failed.reason is HealingReason.ERROR
    progress = {"agreement": [0.5]}
    timed_out = candidate_of(debate(status="failed", error="TimeoutError: "), progress, CONFIG)
    assert timed_out is not None and timed_out.reason is HealingReason.TIMEOUT
    assert timed_out.rounds_completed == 1 and timed_out.metadata["error"] is None
    healthy = debate(result={"consensus_reached": True, "confidence": 0.9})
    assert candidate_of(healthy, None, CONFIG) is None


def test_rerun_payloads_add_rounds_or_a_mediator_judge() -> None:
    payload = {"question": "Tabs?", "agents": ["a", "b"], "rounds": 2, "consensus": "majority"}
    assert rerun_payload(HealingAction.RE_DEBATE, payload, CONFIG, 20)["rounds"] == 2
    extended = rerun_payload(
        HealingAction.EXTEND_ROUNDS, {**payload, "timeout_seconds": 100}, CONFIG, 20
    )
    assert (extended["rounds"], extended["timeout_seconds"]) == (4, 200)
    assert rerun_payload(HealingAction.EXTEND_ROUNDS, payload, CONFIG, 3)["rounds"] == 3
    mediator = HealingConfig(mediator_agent="m")
    mediated = rerun_payload(HealingAction.ADD_MEDIATOR, payload, mediator, 20)
    assert (mediated["agents"], mediated["consensus"], mediated["judge"]) == (
        ["a", "b", "m"],
        "judge",
        "m",
    )
    assert rerun_payload(HealingAction.ADD_MEDIATOR, payload, CONFIG, 20)["judge"] == "a"


def test_config_from_env_converts_and_names_bad_variables() -> None:
    config = HealingConfig.from_env(
        {
            "ARAGORA_HEALING_SCAN_INTERVAL": "0.5",
            "ARAGORA_HEALING_MIN_AGE": "0",
            "ARAGORA_HEALING_AUTO_REDEBATE": "yes",
            "ARAGORA_HEALING_MEDIATOR": "demo-judge",
        }
    )
    assert (config.scan_interval_seconds, config.min_age_for_healing_seconds) == (0.5, 0.0)
    assert config.auto_redebate_enabled and config.mediator_agent == "demo-judge"
    with pytest.raises(ValueError, match="ARAGORA_HEALING_MAX_ATTEMPTS must be a number"):
        HealingConfig.from_env({"ARAGORA_HEALING_MAX_ATTEMPTS": "many"})
    with pytest.raises(ValueError, match="ARAGORA_HEALING_MAX_ATTEMPTS must be at least 1"):
        HealingConfig.from_env({"ARAGORA_HEALING_MAX_ATTEMPTS": "0"})


def test_result_to_dict_has_the_reference_fields() -> None:
    result = HealingResult("d-1", HealingAction.ARCHIVE, True, "archived")
    data = result.to_dict()
    assert data["action"] == "archive" and data["new_debate_id"] is None
    assert set(data) == {
        "debate_id",
        "action",
        "success",
        "message",
        "new_debate_id",
        "metrics",
        "timestamp",
    }
