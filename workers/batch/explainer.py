"""Explain generators: the default one asks a finished debate's own agents to explain it.

An explain generator is ``async (debate_id, options) -> dict``. The default one reads the debate
(its job status in Redis, or the database ledger once Redis forgot it), then asks each of the
debate's agents for the key factors of the outcome, the dissent and, when
``options["include_counterfactuals"]``, counterfactuals. A setting can name another factory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from queue_app.queue import (
    DebateResult,
    InvalidJob,
    Job,
    JobNotFound,
    JobQueue,
    JobStatus,
    get_debate_payload,
)
from queue_app.queue.payloads import DEBATE_JOB_TYPE

from ..agents import AgentPool, Answer, Question, ReplyLine, normalise_answer
from ..plugins import build_from_factory

ExplainGenerator = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

#: Options the default generator understands.
OPTIONS = ("include_counterfactuals", "agents")
#: Values of a DISSENT line that mean there was none.
NO_DISSENT = frozenset({"none", "no dissent", "n a", "nothing"})

ROLE = (
    "You took part in the debate below as one of its agents. Explain its outcome honestly and "
    "briefly: what decided it, and what speaks against it."
)
FACTOR = ReplyLine(label="FACTOR", description="a key factor of the outcome", repeated=True)
DISSENT = ReplyLine(
    label="DISSENT",
    description="the strongest disagreement with the final answer, or none",
    repeated=True,
)
COUNTERFACTUAL = ReplyLine(
    label="COUNTERFACTUAL",
    description="a change in the facts or arguments that would have changed the outcome",
    repeated=True,
)


class DebateNotReady(RuntimeError):
    """The debate has not finished yet (retryable: the batch may run again later)."""


class DebateHistory(Protocol):
    """Finished debates Redis no longer keeps (the host's job ledger)."""

    async def get_debate(self, debate_id: str) -> Job | None:
        """Return the debate job as last recorded, or None when unknown."""
        ...


def explanation_question(job: Job, result: DebateResult, counterfactuals: bool) -> Question:
    """Return the question asked of each agent about the finished debate ``job``."""
    payload = get_debate_payload(job)
    outcome = "reached consensus" if result.consensus_reached else "reached no consensus"
    prompt = (
        f"Question: {payload.question}\n"
        f"Agents: {', '.join(payload.agents)}\n"
        f"The debate {outcome} after {result.rounds_used} round(s); final answer: "
        f"{result.final_answer or 'none'} (confidence {result.confidence:.2f})."
    )
    lines = (FACTOR, DISSENT, COUNTERFACTUAL) if counterfactuals else (FACTOR, DISSENT)
    return Question(role=ROLE, prompt=prompt, lines=lines, subject=payload.question[:80])


def check_options(options: dict[str, Any]) -> tuple[bool, list[str] | None]:
    """Return (include counterfactuals, agents to ask) from the batch options.

    Raises:
        InvalidJob: an option has the wrong type.
    """
    counterfactuals = options.get("include_counterfactuals", False)
    if not isinstance(counterfactuals, bool):
        raise InvalidJob("options.include_counterfactuals must be true or false")
    agents = options.get("agents")
    if agents is not None and (
        not isinstance(agents, list) or not all(isinstance(a, str) and a for a in agents)
    ):
        raise InvalidJob("options.agents must be a list of agent names")
    return counterfactuals, agents


def _merge(answers: list[Answer], counterfactuals: bool) -> dict[str, Any]:
    """Collect every agent's lines, each tagged with its agent."""
    merged: dict[str, Any] = {
        "key_factors": [
            {"agent": a.agent, "factor": value} for a in answers for value in a.all("FACTOR")
        ],
        "dissent": [
            {"agent": a.agent, "point": value}
            for a in answers
            for value in a.all("DISSENT")
            if normalise_answer(value) not in NO_DISSENT
        ],
    }
    if counterfactuals:
        merged["counterfactuals"] = [
            {"agent": a.agent, "counterfactual": value}
            for a in answers
            for value in a.all("COUNTERFACTUAL")
        ]
    return merged


class DefaultExplainGenerator:
    """Explain a finished debate by asking its agents (demo agents work offline)."""

    def __init__(
        self, queue: JobQueue, pool: AgentPool, history: DebateHistory | None = None
    ) -> None:
        self.queue = queue
        self.pool = pool
        self.history = history

    async def __call__(self, debate_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """Return the explanation of debate ``debate_id``.

        Raises:
            JobNotFound: no such debate (not retryable).
            InvalidJob: not a debate, it failed, or bad options (not retryable).
            DebateNotReady: it has not finished yet (retryable).
        """
        counterfactuals, chosen = check_options(options)
        job = await self.finished_debate(debate_id)
        result = DebateResult.from_dict(job.result or {})
        names = chosen or get_debate_payload(job).agents
        question = explanation_question(job, result, counterfactuals)
        answers = await asyncio.gather(*(agent.ask(question) for agent in self.pool.agents(names)))
        return {
            "debate_id": debate_id,
            "question": job.payload.get("question"),
            "final_answer": result.final_answer,
            "consensus_reached": result.consensus_reached,
            "confidence": result.confidence,
            "rounds_used": result.rounds_used,
            **_merge(list(answers), counterfactuals),
            "explained_by": names,
            "token_usage": {
                "input": sum(answer.input_tokens for answer in answers),
                "output": sum(answer.output_tokens for answer in answers),
            },
        }

    async def finished_debate(self, debate_id: str) -> Job:
        """Return the completed debate job, from Redis or else from the history."""
        job = await self.queue.get_status(debate_id)
        if job is None and self.history is not None:
            job = await self.history.get_debate(debate_id)
        if job is None:
            raise JobNotFound(f"debate {debate_id} not found")
        if job.job_type != DEBATE_JOB_TYPE:
            raise InvalidJob(f"job {debate_id} is a {job.job_type} job, not a debate")
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise InvalidJob(f"debate {debate_id} is {job.status.value}: no outcome to explain")
        if job.status is not JobStatus.COMPLETED:
            raise DebateNotReady(f"debate {debate_id} is still {job.status.value}")
        return job


async def load_explain_generator(
    dotted_path: str | None, queue: JobQueue, pool: AgentPool, history: DebateHistory | None
) -> ExplainGenerator:
    """Build the generator made by the factory at ``dotted_path``, or the default one.

    Raises:
        ImportError: ``dotted_path`` does not name a callable in an importable module.
        TypeError: the factory did not return a callable.
    """
    if not dotted_path:
        return DefaultExplainGenerator(queue, pool, history)
    return cast(ExplainGenerator, await build_from_factory(dotted_path, "explain generator"))
