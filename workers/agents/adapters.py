"""Agents: the Agent protocol, the provider HTTP adapters and the offline demo agent.

Every agent takes part in debates (``respond``) and answers questions with a fixed reply format
(``ask``: explanations, stress-test probes).

Errors follow ``queue_app.queue.is_retryable_error``: ``AgentUnavailable`` (429, 408, 5xx, transport
failures, unreadable answers) is a ``ConnectionError`` and is retried; ``AgentRejected`` (other 4xx,
missing key, unknown agent) is a ``ValueError`` and fails the job at once. API keys never appear in
error messages or reprs.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from queue_app.queue import QueueError

from .asking import Answer, Question, ReplyLine, read_answer
from .consensus import Vote, majority, normalise_answer

if TYPE_CHECKING:
    import httpx

ANTHROPIC_VERSION = "2023-06-01"
#: Confidence of a reply that states none.
DEFAULT_CONFIDENCE = 0.5
#: Any agent name starting with this resolves to ``DemoAgent``.
DEMO_PREFIX = "demo"
DEMO_ANSWERS = ("yes", "no")
#: Statuses below 500 that mean "try again later".
RETRYABLE_STATUSES = frozenset({408, 429})
_REFUSALS = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found"}
MAX_ERROR_TYPE_CHARS = 60

SYSTEM_PROMPT = (
    "You are {name}, one of several agents debating a question over several rounds. "
    "Weigh the other agents' arguments, argue briefly, and change your mind only for good reasons. "
    "End your reply with exactly two lines:\n"
    "ANSWER: <your answer in a few words>\n"
    "CONFIDENCE: <a number from 0 to 1>"
)

_ANSWER_LINE = re.compile(r"^\W*answer\W*?:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_CONFIDENCE_LINE = re.compile(
    r"^\W*confidence\W*?:[^\d\n]*(\d*\.?\d+)", re.IGNORECASE | re.MULTILINE
)


class AgentError(QueueError):
    """An agent could not answer."""


class AgentUnavailable(AgentError, ConnectionError):
    """The agent's provider is unreachable or overloaded; a later attempt may succeed."""


class AgentRejected(AgentError, ValueError):
    """The agent cannot answer this request; running the job again will not help."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReply:
    """One agent's contribution to one round."""

    text: str
    #: Short normalised final answer, compared across agents by the consensus rules.
    answer: str
    #: Self-reported confidence in 0..1.
    confidence: float
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """A reply as recorded in the debate transcript."""

    agent: str
    #: 1-based round in which the reply was given.
    round_number: int
    reply: AgentReply

    def vote(self) -> Vote:
        """Return this turn as a consensus vote."""
        return Vote(agent=self.agent, answer=self.reply.answer, confidence=self.reply.confidence)


class Agent(Protocol):
    """A debate participant."""

    @property
    def name(self) -> str:
        """Return the agent's name as listed in the payload."""
        ...

    async def respond(self, question: str, transcript: list[Turn], round_number: int) -> AgentReply:
        """Answer ``question`` in round ``round_number``, having read the earlier rounds."""
        ...

    async def ask(self, question: Question) -> Answer:
        """Answer ``question`` in its reply format."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSettings:
    """How to reach one model provider."""

    #: Environment variable that holds the key; errors name it, never the key.
    key_variable: str
    api_key: str | None = field(default=None, repr=False)
    #: Scheme and host, without the ``/v1/...`` path.
    base_url: str
    model: str


def debate_prompt(question: str, transcript: list[Turn], round_number: int) -> str:
    """Return the user prompt of a round: the question and every earlier reply."""
    lines = [f"Question: {question}", f"This is round {round_number}."]
    if transcript:
        lines.append("Earlier rounds:")
        lines += [f"[round {t.round_number}] {t.agent}: {t.reply.text}" for t in transcript]
    return "\n".join(lines)


def parse_reply(text: str, input_tokens: int, output_tokens: int) -> AgentReply:
    """Read the ``ANSWER:`` and ``CONFIDENCE:`` lines of a model reply."""
    answers = _ANSWER_LINE.findall(text)
    last_line = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    confidences = _CONFIDENCE_LINE.findall(text)
    confidence = float(confidences[-1]) if confidences else DEFAULT_CONFIDENCE
    if confidence > 1:  # "CONFIDENCE: 80" means a percentage
        confidence /= 100
    return AgentReply(
        text=text,
        answer=normalise_answer(answers[-1] if answers else last_line),
        confidence=min(confidence, 1.0),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def _provider_error_type(response: httpx.Response, api_key: str) -> str:
    """Return the provider's ``error.type`` as a suffix, masking the key if it is echoed."""
    try:
        kind = str(response.json()["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return ""
    return f" ({kind.replace(api_key, '***')[:MAX_ERROR_TYPE_CHARS]})"


def check_status(agent: str, response: httpx.Response, api_key: str) -> None:
    """Raise ``AgentUnavailable`` or ``AgentRejected`` unless the response is a 2xx."""
    status = response.status_code
    if response.is_success:
        return
    if status in RETRYABLE_STATUSES or status >= 500:
        raise AgentUnavailable(f"{agent}: provider answered HTTP {status}; try again later")
    reason = _REFUSALS.get(status, "refused")
    raise AgentRejected(f"{agent}: HTTP {status} {reason}{_provider_error_type(response, api_key)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpAgent(ABC):
    """Base of the provider adapters: one JSON POST per reply on a shared client."""

    name: str
    client: httpx.AsyncClient = field(repr=False)
    api_key: str = field(repr=False)
    base_url: str
    model: str
    max_tokens: int

    @abstractmethod
    def request(self, system: str, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Return the path, headers and JSON body of the provider call."""

    @abstractmethod
    def parse(self, data: Any) -> tuple[str, int, int]:
        """Read the provider's JSON answer: its text, input tokens and output tokens."""

    async def respond(self, question: str, transcript: list[Turn], round_number: int) -> AgentReply:
        """Ask the provider for this agent's reply in round ``round_number``."""
        system = SYSTEM_PROMPT.format(name=self.name)
        return parse_reply(
            *await self.complete(system, debate_prompt(question, transcript, round_number))
        )

    async def ask(self, question: Question) -> Answer:
        """Ask the provider ``question`` and read its reply lines."""
        return read_answer(
            self.name, question, *await self.complete(question.role, question.render())
        )

    async def complete(self, system: str, prompt: str) -> tuple[str, int, int]:
        """POST one prompt; return the reply text, input tokens and output tokens."""
        import httpx  # imported by the first call: processes that ask no agent never load it

        path, headers, body = self.request(system, prompt)
        try:
            response = await self.client.post(f"{self.base_url}{path}", headers=headers, json=body)
        except httpx.TransportError as error:
            raise AgentUnavailable(
                f"{self.name}: request failed ({type(error).__name__})"
            ) from error
        check_status(self.name, response, self.api_key)
        try:
            return self.parse(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise AgentUnavailable(f"{self.name}: unreadable provider answer") from error


class AnthropicAgent(HttpAgent):
    """Adapter for the Anthropic Messages API (``POST /v1/messages``)."""

    def request(self, system: str, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Return the Messages API call for one reply."""
        headers = {"x-api-key": self.api_key, "anthropic-version": ANTHROPIC_VERSION}
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
        }
        return "/v1/messages", headers, body

    def parse(self, data: Any) -> tuple[str, int, int]:
        """Read ``content[0].text`` and ``usage``."""
        usage = data["usage"]
        return (
            str(data["content"][0]["text"]),
            int(usage["input_tokens"]),
            int(usage["output_tokens"]),
        )


class OpenAIAgent(HttpAgent):
    """Adapter for the OpenAI Chat Completions API (``POST /v1/chat/completions``)."""

    def request(self, system: str, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Return the Chat Completions call for one reply."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        return "/v1/chat/completions", headers, {"model": self.model, "messages": messages}

    def parse(self, data: Any) -> tuple[str, int, int]:
        """Read ``choices[0].message.content`` and ``usage``."""
        usage = data["usage"]
        text = str(data["choices"][0]["message"]["content"])
        return text, int(usage["prompt_tokens"]), int(usage["completion_tokens"])


def _previous_majority(transcript: list[Turn], round_number: int) -> str | None:
    """Return the answer a strict majority gave in the previous round, if any."""
    votes = [turn.vote() for turn in transcript if turn.round_number == round_number - 1]
    outcome = majority(votes)
    return outcome.final_answer if outcome.reached else None


@dataclass(frozen=True, slots=True)
class DemoAgent:
    """Offline agent: opens with an answer hashed from its name and the question, then follows
    a strict majority of the previous round.

    Two demo agents may disagree forever; three or more agree by round 2 at the latest.
    """

    name: str

    async def respond(self, question: str, transcript: list[Turn], round_number: int) -> AgentReply:
        """Answer without any network call, deterministically."""
        digest = hashlib.sha256(f"{self.name}\n{question}".encode()).digest()
        opening = DEMO_ANSWERS[digest[0] % len(DEMO_ANSWERS)]
        answer = _previous_majority(transcript, round_number) or opening
        confidence = 0.5 + digest[1] % 50 / 100
        text = f"{self.name} holds that the answer is {answer}.\n"
        text += f"ANSWER: {answer}\nCONFIDENCE: {confidence:.2f}"
        prompt = debate_prompt(question, transcript, round_number)
        return parse_reply(text, len(prompt.split()), len(text.split()))

    async def ask(self, question: Question) -> Answer:
        """Fill the question's reply lines without any network call, deterministically."""
        subject = question.subject or "the question"
        lines = [f"{self.name} reviewed {subject}."]
        for line in question.lines:
            digest = hashlib.sha256(f"{self.name}\n{subject}\n{line.label}".encode()).digest()
            values = _demo_values(f"{self.name} on {subject}", line, digest)
            lines += [f"{line.label}: {value}" for value in values]
        text = "\n".join(lines)
        return read_answer(
            self.name, question, text, len(question.render().split()), len(text.split())
        )


def _demo_values(author: str, line: ReplyLine, digest: bytes) -> list[str]:
    """Return the demo agent's values for one reply line (chosen by ``digest``)."""
    if line.choices:
        return [line.choices[digest[0] % len(line.choices)]]
    if line.number:
        return [f"{0.5 + digest[1] % 50 / 100:.2f}"]
    count = 2 if line.repeated else 1
    return [f"{author}: {line.description} ({index + 1})" for index in range(count)]


#: Adapter name -> HTTP agent class; names starting with ``demo`` resolve to ``DemoAgent``.
HTTP_AGENTS: Mapping[str, type[HttpAgent]] = {
    "anthropic-api": AnthropicAgent,
    "openai-api": OpenAIAgent,
}


def require_api_key(settings: ProviderSettings) -> str:
    """Return the provider's key, or raise ``AgentRejected`` naming its variable."""
    if not settings.api_key:
        raise AgentRejected(f"{settings.key_variable} is not set (unauthorized)")
    return settings.api_key


def resolve_agent(
    name: str,
    *,
    client: httpx.AsyncClient,
    providers: Mapping[str, ProviderSettings],
    max_tokens: int,
) -> Agent:
    """Return the agent adapter registered under ``name``.

    Raises:
        AgentRejected: ``name`` is unknown, or its provider's key is not set.
    """
    if name.startswith(DEMO_PREFIX):
        return DemoAgent(name)
    agent_class = HTTP_AGENTS.get(name)
    settings = providers.get(name)
    if agent_class is None or settings is None:
        known = ", ".join([*HTTP_AGENTS, f"{DEMO_PREFIX}*"])
        raise AgentRejected(f"unknown agent {name!r}; known agents: {known}")
    return agent_class(
        name=name,
        client=client,
        api_key=require_api_key(settings),
        base_url=settings.base_url.rstrip("/"),
        model=settings.model,
        max_tokens=max_tokens,
    )
