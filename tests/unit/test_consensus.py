"""Consensus rules: majority, unanimous and judge over final-round votes."""

from __future__ import annotations

import pytest

from workers.agents.consensus import (
    NO_VOTES,
    Vote,
    decide,
    judge_rules,
    majority,
    normalise_answer,
    plurality_answer,
    unanimous,
)


def votes(*pairs: tuple[str, float]) -> list[Vote]:
    """Return votes of agents a0, a1, ... giving ``(answer, confidence)``."""
    return [
        Vote(agent=f"a{index}", answer=answer, confidence=confidence)
        for index, (answer, confidence) in enumerate(pairs)
    ]


def test_normalise_answer_drops_case_punctuation_and_spacing() -> None:
    assert normalise_answer("  **Yes**, use   Postgres! ") == "yes use postgres"
    assert normalise_answer("x" * 500) == "x" * 200


def test_majority_reached_with_more_than_half() -> None:
    outcome = majority(votes(("Yes", 0.9), ("yes.", 0.7), ("no", 0.6)))
    assert outcome.reached
    assert outcome.final_answer == "yes"
    # share 2/3 times the supporters' mean confidence 0.8
    assert outcome.confidence == pytest.approx(2 / 3 * 0.8)


def test_majority_not_reached_on_even_split() -> None:
    outcome = majority(votes(("yes", 0.6), ("no", 0.9)))
    assert not outcome.reached
    assert outcome.final_answer == "no"
    assert outcome.confidence == pytest.approx(0.5 * 0.9)


def test_plurality_answer_breaks_ties_by_confidence_then_order() -> None:
    assert plurality_answer(votes(("yes", 0.5), ("no", 0.5), ("no", 0.1), ("yes", 0.2))) == "yes"
    assert plurality_answer(votes(("no", 0.4), ("yes", 0.4))) == "no"
    assert plurality_answer([]) is None


def test_unanimous_requires_every_vote() -> None:
    split = unanimous(votes(("yes", 0.9), ("yes", 0.9), ("no", 0.9)))
    assert not split.reached
    assert split.final_answer == "yes"
    agreed = unanimous(votes(("Yes", 0.9), ("yes", 0.5)))
    assert agreed.reached
    assert agreed.confidence == pytest.approx(0.7)


def test_judge_rules_with_first_voter_by_default() -> None:
    outcome = judge_rules(votes(("no", 0.8), ("yes", 0.9), ("yes", 0.9)))
    assert outcome.final_answer == "no"
    assert not outcome.reached
    assert outcome.confidence == pytest.approx(1 / 3 * 0.8)


def test_judge_rules_with_named_judge_and_majority_backing() -> None:
    outcome = judge_rules(votes(("no", 0.8), ("yes", 0.6), ("yes", 0.4)), judge="a2")
    assert outcome.reached
    assert outcome.final_answer == "yes"
    assert outcome.confidence == pytest.approx(2 / 3 * 0.5)


def test_judge_rules_rejects_unknown_judge() -> None:
    with pytest.raises(ValueError, match="'nobody' is not one of"):
        judge_rules(votes(("yes", 1.0)), judge="nobody")


@pytest.mark.parametrize("mode", ["majority", "unanimous", "judge"])
def test_decide_without_votes_reaches_nothing(mode: str) -> None:
    assert decide(mode, []) == NO_VOTES


def test_decide_dispatches_by_mode() -> None:
    split = votes(("yes", 1.0), ("yes", 1.0), ("no", 1.0))
    assert decide("majority", split).reached
    assert not decide("unanimous", split).reached
    assert decide("judge", split, judge="a2").final_answer == "no"


def test_decide_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown consensus mode 'quorum'"):
        decide("quorum", votes(("yes", 1.0)))
