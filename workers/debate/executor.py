"""The debate executor: runs a debate job round by round and returns its ``DebateResult``.

The executor is pluggable: ``load_executor("package.module.factory")`` builds any other executor
from a factory named by a setting; without a path it builds ``DefaultDebateExecutor``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import Protocol, Self, cast

from opentelemetry import trace

from queue_app.queue import (
    DebateJobPayload,
    DebateResult,
    InvalidJob,
    Job,
    get_debate_payload,
    is_retryable_error,
)

from ..agents import NO_VOTES, Agent, AgentPool, AgentReply, AgentSettings, Turn, agreement, decide
from ..plugins import build_from_factory
from ..runtime import report_progress

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class DebateExecutor(Protocol):
    """Run one debate job and return its result."""

    async def __call__(self, job: Job) -> DebateResult:
        """Run the debate of ``job``."""
        ...


class DefaultDebateExecutor:
    """Run debates between the agents named in the payload, on one shared HTTP client.

    Each round every agent answers concurrently, having read the earlier rounds. The debate stops
    after the first round whose answers meet the payload's consensus rule, or after
    ``payload.rounds``. In ``judge`` mode the job payload may name the judge (``"judge"`` key);
    otherwise the first agent judges. Agent errors propagate so that the worker can decide on a
    retry; when several agents fail at once, a non-retryable error wins.
    """

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.pool = AgentPool(settings)

    async def __call__(self, job: Job) -> DebateResult:
        """Run the debate of ``job`` and return its result."""
        started = time.monotonic()
        payload = get_debate_payload(job)
        agents = self._agents(payload)
        judge = _judge_name(job, payload)
        transcript: list[Turn] = []
        shares: list[float] = []
        outcome, rounds_used = NO_VOTES, 0
        while rounds_used < payload.rounds and not outcome.reached:
            rounds_used += 1
            turns = await _run_round(payload.question, agents, transcript, rounds_used)
            transcript += turns
            votes = [turn.vote() for turn in turns]
            outcome = decide(payload.consensus, votes, judge)
            shares.append(round(agreement(votes), 4))
            logger.debug("debate %s round %d: consensus %s", job.id, rounds_used, outcome.reached)
            # Agreement per round lets consensus healing see whether the debate converged.
            await report_progress({"round": rounds_used, "of": payload.rounds, "agreement": shares})
        return DebateResult(
            debate_id=job.id,
            consensus_reached=outcome.reached,
            final_answer=outcome.final_answer,
            confidence=outcome.confidence,
            rounds_used=rounds_used,
            participants=list(payload.agents),
            duration_seconds=time.monotonic() - started,
            token_usage=_token_usage(transcript),
        )

    def _agents(self, payload: DebateJobPayload) -> list[Agent]:
        """Resolve every agent before the first round, so configuration errors cost no call."""
        if not payload.agents:
            raise InvalidJob("a debate needs at least one agent")
        return self.pool.agents(payload.agents)

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self.pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _judge_name(job: Job, payload: DebateJobPayload) -> str | None:
    """Return the judge named by ``job.payload["judge"]``, or ``None`` for the first agent."""
    judge = job.payload.get("judge")
    if judge is None:
        return None
    if not isinstance(judge, str) or judge not in payload.agents:
        raise InvalidJob(f"judge {judge!r} is not one of the debate's agents")
    return judge


async def _run_round(
    question: str, agents: list[Agent], transcript: list[Turn], round_number: int
) -> list[Turn]:
    """Ask every agent at once; on a failure cancel the others and raise the most final error."""
    errors: tuple[Exception, ...] = ()
    with tracer.start_as_current_span("debate.round", attributes={"debate.round": round_number}):
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(agent.respond(question, list(transcript), round_number))
                    for agent in agents
                ]
        except ExceptionGroup as failure:
            errors = failure.exceptions
    if errors:
        # Raised outside the handler so the error keeps its own cause and no group context.
        raise next((error for error in errors if not is_retryable_error(error)), errors[0])
    replies: list[AgentReply] = [task.result() for task in tasks]
    return [
        Turn(agent=agent.name, round_number=round_number, reply=reply)
        for agent, reply in zip(agents, replies, strict=True)
    ]


def _token_usage(transcript: list[Turn]) -> dict[str, int]:
    """Sum the tokens of every reply."""
    return {
        "input": sum(turn.reply.input_tokens for turn in transcript),
        "output": sum(turn.reply.output_tokens for turn in transcript),
    }


async def create_default_executor(
    settings: AgentSettings | None = None,
) -> DefaultDebateExecutor:
    """Build the default executor (without ``settings``: defaults, no provider keys).

    Pass ``AgentSettings.from_env(os.environ)`` to take provider keys from the environment.
    """
    return DefaultDebateExecutor(AgentSettings() if settings is None else settings)


async def load_executor(
    dotted_path: str | None = None, settings: AgentSettings | None = None
) -> DebateExecutor:
    """Build the executor made by the factory at ``dotted_path``, or the default one.

    The factory takes no arguments and returns an executor, or an awaitable of one.

    Raises:
        ImportError: ``dotted_path`` does not name a callable in an importable module.
        TypeError: the factory did not return a callable executor.
    """
    if not dotted_path:
        return await create_default_executor(settings)
    return cast(DebateExecutor, await build_from_factory(dotted_path, "executor"))
