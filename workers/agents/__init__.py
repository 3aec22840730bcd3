"""Agents shared by the worker kinds: provider adapters, the demo agent, consensus rules,
questions with a reply format, and ``AgentPool``. Knows no worker kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .adapters import (
        Agent,
        AgentError,
        AgentRejected,
        AgentReply,
        AgentUnavailable,
        DemoAgent,
        ProviderSettings,
        Turn,
        resolve_agent,
    )
    from .asking import Answer, Question, ReplyLine, read_answer
    from .consensus import NO_VOTES, ConsensusOutcome, Vote, agreement, decide, normalise_answer
    from .settings import ANTHROPIC_DEFAULTS, OPENAI_DEFAULTS, AgentPool, AgentSettings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".adapters": (
            "Agent",
            "AgentError",
            "AgentRejected",
            "AgentReply",
            "AgentUnavailable",
            "DemoAgent",
            "ProviderSettings",
            "Turn",
            "resolve_agent",
        ),
        ".asking": ("Answer", "Question", "ReplyLine", "read_answer"),
        ".consensus": (
            "NO_VOTES",
            "ConsensusOutcome",
            "Vote",
            "agreement",
            "decide",
            "normalise_answer",
        ),
        ".settings": ("ANTHROPIC_DEFAULTS", "OPENAI_DEFAULTS", "AgentPool", "AgentSettings"),
    },
)

__all__ = [
    "ANTHROPIC_DEFAULTS",
    "NO_VOTES",
    "OPENAI_DEFAULTS",
    "Agent",
    "AgentError",
    "AgentPool",
    "AgentRejected",
    "AgentReply",
    "AgentSettings",
    "AgentUnavailable",
    "Answer",
    "ConsensusOutcome",
    "DemoAgent",
    "ProviderSettings",
    "Question",
    "ReplyLine",
    "Turn",
    "Vote",
    "agreement",
    "decide",
    "normalise_answer",
    "read_answer",
    "resolve_agent",
]
