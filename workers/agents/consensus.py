"""Consensus rules of a debate: pure functions from final-round votes to an outcome.

Every rule groups votes by their normalised answer and scores the chosen answer the same way:
``confidence = share * mean_confidence``, where ``share`` is the fraction of all voters who gave
the chosen answer and ``mean_confidence`` is the mean self-reported confidence of those voters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Longest normalised answer kept; longer answers are cut so that votes stay comparable.
MAX_ANSWER_CHARS = 200

_NON_WORD = re.compile(r"[^\w\s]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """One agent's final answer in a round."""

    agent: str
    answer: str
    #: Self-reported confidence in 0..1.
    confidence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusOutcome:
    """What a consensus rule decided about one round."""

    reached: bool
    #: The chosen answer (normalised), or ``None`` when there were no votes.
    final_answer: str | None
    #: ``share * mean_confidence`` of the chosen answer, in 0..1.
    confidence: float


NO_VOTES = ConsensusOutcome(reached=False, final_answer=None, confidence=0.0)


def normalise_answer(text: str) -> str:
    """Return ``text`` lower-cased, without punctuation and with single spaces."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())[:MAX_ANSWER_CHARS].rstrip()


def _supporters(votes: Sequence[Vote], answer: str) -> list[Vote]:
    return [vote for vote in votes if normalise_answer(vote.answer) == answer]


def _score(votes: Sequence[Vote], answer: str) -> float:
    backing = _supporters(votes, answer)
    if not backing:
        return 0.0
    share = len(backing) / len(votes)
    return share * sum(vote.confidence for vote in backing) / len(backing)


def plurality_answer(votes: Sequence[Vote]) -> str | None:
    """Return the most given answer; ties go to more summed confidence, then first seen."""
    answers = list(dict.fromkeys(normalise_answer(vote.answer) for vote in votes))
    if not answers:
        return None

    def rank(answer: str) -> tuple[int, float, int]:
        backing = _supporters(votes, answer)
        return len(backing), sum(vote.confidence for vote in backing), -answers.index(answer)

    return max(answers, key=rank)


def agreement(votes: Sequence[Vote]) -> float:
    """Return the share of voters giving the plurality answer (0 without votes)."""
    answer = plurality_answer(votes)
    return len(_supporters(votes, answer)) / len(votes) if answer is not None else 0.0


def majority(votes: Sequence[Vote], judge: str | None = None) -> ConsensusOutcome:
    """Reach consensus when strictly more than half of the voters give the plurality answer."""
    answer = plurality_answer(votes)
    if answer is None:
        return NO_VOTES
    reached = 2 * len(_supporters(votes, answer)) > len(votes)
    return ConsensusOutcome(reached=reached, final_answer=answer, confidence=_score(votes, answer))


def unanimous(votes: Sequence[Vote], judge: str | None = None) -> ConsensusOutcome:
    """Reach consensus when every voter gives the same answer; otherwise report the plurality."""
    answer = plurality_answer(votes)
    if answer is None:
        return NO_VOTES
    reached = len(_supporters(votes, answer)) == len(votes)
    return ConsensusOutcome(reached=reached, final_answer=answer, confidence=_score(votes, answer))


def judge_rules(votes: Sequence[Vote], judge: str | None = None) -> ConsensusOutcome:
    """Take the judge's answer as final; consensus is reached when a majority shares it.

    The judge is the voter named ``judge``, or the first voter when ``judge`` is ``None``.

    Raises:
        ValueError: ``judge`` names no voter.
    """
    if not votes:
        return NO_VOTES
    ruling = next((vote for vote in votes if judge is None or vote.agent == judge), None)
    if ruling is None:
        raise ValueError(f"judge {judge!r} is not one of the debate's agents")
    answer = normalise_answer(ruling.answer)
    reached = 2 * len(_supporters(votes, answer)) > len(votes)
    return ConsensusOutcome(reached=reached, final_answer=answer, confidence=_score(votes, answer))


ConsensusRule = Callable[[Sequence[Vote], str | None], ConsensusOutcome]

#: Consensus mode name (``DebateJobPayload.consensus``) -> rule.
CONSENSUS_RULES: dict[str, ConsensusRule] = {
    "majority": majority,
    "unanimous": unanimous,
    "judge": judge_rules,
}


def decide(mode: str, votes: Sequence[Vote], judge: str | None = None) -> ConsensusOutcome:
    """Apply the consensus rule named ``mode`` to ``votes``.

    Raises:
        ValueError: ``mode`` is not a known consensus mode, or ``judge`` names no voter.
    """
    rule = CONSENSUS_RULES.get(mode)
    if rule is None:
        raise ValueError(f"unknown consensus mode {mode!r}; known: {', '.join(CONSENSUS_RULES)}")
    return rule(votes, judge)
