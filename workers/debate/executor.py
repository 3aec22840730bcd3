"""The debate executor: runs a debate job round by round and returns its ``DebateResult``.

The executor is pluggable: ``load_executor("package.module.factory")`` builds any other executor
from a factory named by a setting; without a path it builds ``DefaultDebateExecutor``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, cast

import httpx
from opentelemetry import trace

from queue_app.queue import (
    ConfigError,
    DebateJobPayload,
    DebateResult,
    InvalidJob,
    Job,
    get_debate_payload,
    is_retryable_error,
)

from ..runtime import report_progress
from .agents import Agent, AgentReply, ProviderSettings, Turn, resolve_agent
from .consensus import NO_VOTES, decide

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

ANTHROPIC_DEFAULTS = ProviderSettings(
    key_variable="ANTHROPIC_API_KEY",
    base_url="https://api.anthropic.com",
    model="claude-sonnet-4-5",
)
OPENAI_DEFAULTS = ProviderSettings(
    key_variable="OPENAI_API_KEY",
    base_url="https://api.openai.com",
    model="gpt-4.1-mini",
)


class DebateExecutor(Protocol):
    """Run one debate job and return its result."""

    async def __call__(self, job: Job) -> DebateResult:
        """Run the debate of ``job``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSettings:
    """What the default executor needs: provider access, HTTP timeouts and reply length."""

    anthropic: ProviderSettings = ANTHROPIC_DEFAULTS
    openai: ProviderSettings = OPENAI_DEFAULTS
    #: Seconds to open a connection to a provider.
    connect_timeout_seconds: float = 10.0
    #: Seconds to wait for a provider's answer; model replies can be slow.
    read_timeout_seconds: float = 120.0
    #: ``max_tokens`` of each Anthropic reply.
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        for name in ("connect_timeout_seconds", "read_timeout_seconds", "max_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ExecutorSettings:
        """Read the settings from the variables ``environ`` holds; unset values keep defaults.

        The worker never reads the environment itself: ``aragora_site/settings.py`` collects
        these variables into ``ARAGORA_AGENT_ENV`` (a library user passes ``os.environ``).

        Variables: ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``ARAGORA_ANTHROPIC_MODEL``,
        ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ARAGORA_OPENAI_MODEL``,
        ``ARAGORA_AGENT_CONNECT_TIMEOUT``, ``ARAGORA_AGENT_READ_TIMEOUT`` (seconds) and
        ``ARAGORA_AGENT_MAX_TOKENS``.
        """
        env = environ
        return cls(
            anthropic=_provider_from_env(env, "ANTHROPIC", ANTHROPIC_DEFAULTS),
            openai=_provider_from_env(env, "OPENAI", OPENAI_DEFAULTS),
            connect_timeout_seconds=_env_number(env, "ARAGORA_AGENT_CONNECT_TIMEOUT", 10.0, float),
            read_timeout_seconds=_env_number(env, "ARAGORA_AGENT_READ_TIMEOUT", 120.0, float),
            max_tokens=_env_number(env, "ARAGORA_AGENT_MAX_TOKENS", 1024, int),
        )

    def providers(self) -> dict[str, ProviderSettings]:
        """Return the provider settings keyed by agent adapter name."""
        return {"anthropic-api": self.anthropic, "openai-api": self.openai}


def _provider_from_env(
    env: Mapping[str, str], vendor: str, defaults: ProviderSettings
) -> ProviderSettings:
    return ProviderSettings(
        key_variable=defaults.key_variable,
        api_key=env.get(defaults.key_variable) or None,
        base_url=env.get(f"{vendor}_BASE_URL") or defaults.base_url,
        model=env.get(f"ARAGORA_{vendor}_MODEL") or defaults.model,
    )


def _env_number[N: (int, float)](
    env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]
) -> N:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from error
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


class DefaultDebateExecutor:
    """Run debates between the agents named in the payload, on one shared HTTP client.

    Each round every agent answers concurrently, having read the earlier rounds. The debate stops
    after the first round whose answers meet the payload's consensus rule, or after
    ``payload.rounds``. In ``judge`` mode the job payload may name the judge (``"judge"`` key);
    otherwise the first agent judges. Agent errors propagate so that the worker can decide on a
    retry; when several agents fail at once, a non-retryable error wins.
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        timeout = httpx.Timeout(
            settings.read_timeout_seconds, connect=settings.connect_timeout_seconds
        )
        self._client = httpx.AsyncClient(timeout=timeout)

    async def __call__(self, job: Job) -> DebateResult:
        """Run the debate of ``job`` and return its result."""
        started = time.monotonic()
        payload = get_debate_payload(job)
        agents = self._agents(payload)
        judge = _judge_name(job, payload)
        transcript: list[Turn] = []
        outcome, rounds_used = NO_VOTES, 0
        while rounds_used < payload.rounds and not outcome.reached:
            rounds_used += 1
            turns = await _run_round(payload.question, agents, transcript, rounds_used)
            transcript += turns
            outcome = decide(payload.consensus, [turn.vote() for turn in turns], judge)
            logger.debug("debate %s round %d: consensus %s", job.id, rounds_used, outcome.reached)
            await report_progress({"round": rounds_used, "of": payload.rounds})
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
        providers = self.settings.providers()
        return [
            resolve_agent(
                name, client=self._client, providers=providers, max_tokens=self.settings.max_tokens
            )
            for name in payload.agents
        ]

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._client.aclose()

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
    settings: ExecutorSettings | None = None,
) -> DefaultDebateExecutor:
    """Build the default executor (without ``settings``: defaults, no provider keys).

    Pass ``ExecutorSettings.from_env(os.environ)`` to take provider keys from the environment.
    """
    return DefaultDebateExecutor(ExecutorSettings() if settings is None else settings)


async def load_executor(
    dotted_path: str | None = None, settings: ExecutorSettings | None = None
) -> DebateExecutor:
    """Build the executor made by the factory at ``dotted_path``, or the default one.

    The factory takes no arguments and returns an executor, or an awaitable of one.

    Raises:
        ImportError: ``dotted_path`` does not name a callable in an importable module.
        TypeError: the factory did not return a callable executor.
    """
    if not dotted_path:
        return await create_default_executor(settings)
    executor = _import_factory(dotted_path)()
    if inspect.isawaitable(executor):
        executor = await executor
    if not callable(executor):
        raise TypeError(f"executor factory {dotted_path!r} returned {type(executor).__name__}")
    return cast(DebateExecutor, executor)


def _import_factory(dotted_path: str) -> Callable[[], object]:
    """Import the callable named by ``package.module.attribute``."""
    module_name, _, attribute = dotted_path.rpartition(".")
    if not module_name or not attribute:
        raise ImportError(f"executor path {dotted_path!r} is not of the form 'module.factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"executor path {dotted_path!r}: cannot import module {module_name!r} ({error})"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ImportError(
            f"executor path {dotted_path!r}: {module_name!r} has no callable {attribute!r}"
        )
    return cast(Callable[[], object], factory)
