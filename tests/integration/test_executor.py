"""The debate executor against a local pytest-httpserver speaking the providers' wire formats."""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
import traceback
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from queue_app.queue import (
    ConfigError,
    DebateResult,
    InvalidJob,
    create_debate_job,
    is_retryable_error,
)
from workers.agents import ANTHROPIC_DEFAULTS, OPENAI_DEFAULTS, AgentSettings
from workers.agents.adapters import (
    SYSTEM_PROMPT,
    AgentRejected,
    AgentUnavailable,
    DemoAgent,
    parse_reply,
)
from workers.debate.executor import (
    DefaultDebateExecutor,
    create_default_executor,
    load_executor,
)

ANTHROPIC_KEY = "sk-ant-test-7f3a9c"
OPENAI_KEY = "sk-openai-test-4d2e8b"
PATHS = {"anthropic-api": "/v1/messages", "openai-api": "/v1/chat/completions"}
KEYS = {"anthropic-api": ANTHROPIC_KEY, "openai-api": OPENAI_KEY}


def anthropic_answer(text: str) -> dict[str, Any]:
    """Return a Messages API response body using 11 input and 7 output tokens."""
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 11, "output_tokens": 7},
    }


def openai_answer(text: str) -> dict[str, Any]:
    """Return a Chat Completions response body using 13 prompt and 5 completion tokens."""
    message = {"role": "assistant", "content": text}
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18},
    }


def settings_for(base_url: str) -> AgentSettings:
    """Return settings pointing both providers at ``base_url`` with test keys."""
    return AgentSettings(
        anthropic=dataclasses.replace(
            ANTHROPIC_DEFAULTS, api_key=ANTHROPIC_KEY, base_url=base_url, model="claude-test"
        ),
        openai=dataclasses.replace(
            OPENAI_DEFAULTS, api_key=OPENAI_KEY, base_url=base_url, model="gpt-test"
        ),
        connect_timeout_seconds=2.0,
        read_timeout_seconds=5.0,
        max_tokens=256,
    )


def error_text(error: BaseException) -> str:
    """Return everything a log or ledger could show of ``error``: messages, causes, traceback."""
    return "".join(traceback.format_exception(error)) + repr(error)


def closed_port() -> int:
    """Return a loopback port with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def executor(httpserver: HTTPServer) -> AsyncIterator[DefaultDebateExecutor]:
    """Return an executor whose providers are the local HTTP server."""
    async with await create_default_executor(settings_for(httpserver.url_for(""))) as executor:
        yield executor


async def split_question(agents: list[str]) -> str:
    """Return a question on which the demo agents' opening answers are not all the same."""
    for index in range(100):
        question = f"Should we adopt proposal {index}?"
        openings = {(await DemoAgent(name).respond(question, [], 1)).answer for name in agents}
        if len(openings) > 1:
            return question
    raise AssertionError("no split question found")


def request_json(httpserver: HTTPServer, index: int) -> tuple[Request, Any]:
    """Return the ``index``-th request the server received and its JSON body."""
    request = httpserver.log[index][0]
    return request, request.get_json()


async def debate_alone(
    httpserver: HTTPServer,
    executor: DefaultDebateExecutor,
    agent: str,
    answer: dict[str, Any],
    status: int = 200,
) -> DebateResult:
    """Serve ``answer`` on the path of ``agent`` and run a one-round debate of it alone."""
    httpserver.expect_request(PATHS[agent], method="POST").respond_with_json(answer, status=status)
    return await executor(create_debate_job("Microservices?", agents=[agent], rounds=1))


async def test_anthropic_agent_speaks_messages_wire_format(
    httpserver: HTTPServer, executor: DefaultDebateExecutor
) -> None:
    answer = anthropic_answer("Start with a monolith.\nANSWER: No.\nCONFIDENCE: 0.8")
    result = await debate_alone(httpserver, executor, "anthropic-api", answer)
    request, body = request_json(httpserver, 0)
    headers = {name: request.headers.get(name) for name in ("x-api-key", "anthropic-version")}
    assert headers == {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    prompt = body["messages"][0]["content"]
    assert body == {
        "model": "claude-test",
        "max_tokens": 256,
        "system": SYSTEM_PROMPT.format(name="anthropic-api"),
        "messages": [{"role": "user", "content": prompt}],
    }
    assert prompt == "Question: Microservices?\nThis is round 1."
    assert (result.final_answer, result.token_usage) == ("no", {"input": 11, "output": 7})
    assert result.confidence == pytest.approx(0.8)


async def test_openai_agent_speaks_chat_completions_wire_format(
    httpserver: HTTPServer, executor: DefaultDebateExecutor
) -> None:
    answer = openai_answer("Yes, for independent teams.\nANSWER: yes\nCONFIDENCE: 65%")
    result = await debate_alone(httpserver, executor, "openai-api", answer)
    request, body = request_json(httpserver, 0)
    assert request.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    system = {"role": "system", "content": SYSTEM_PROMPT.format(name="openai-api")}
    user = {"role": "user", "content": "Question: Microservices?\nThis is round 1."}
    assert body == {"model": "gpt-test", "messages": [system, user]}
    assert (result.final_answer, result.token_usage) == ("yes", {"input": 13, "output": 5})
    assert result.confidence == pytest.approx(0.65)


@pytest.mark.parametrize("agent", ["anthropic-api", "openai-api"])
@pytest.mark.parametrize("status", [429, 500, 503, 529])
async def test_http_agent_overload_is_retryable(
    httpserver: HTTPServer, executor: DefaultDebateExecutor, agent: str, status: int
) -> None:
    body = {"error": {"type": "overloaded_error", "message": "busy"}}
    with pytest.raises(AgentUnavailable, match=f"HTTP {status}") as caught:
        await debate_alone(httpserver, executor, agent, body, status)
    assert is_retryable_error(caught.value)


@pytest.mark.parametrize("agent", ["anthropic-api", "openai-api"])
@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_http_agent_refusal_is_not_retryable_and_hides_key(
    httpserver: HTTPServer, executor: DefaultDebateExecutor, agent: str, status: int
) -> None:
    key = KEYS[agent]
    echo = {"error": {"type": f"authentication_error {key}", "message": f"bad key {key}"}}
    with pytest.raises(AgentRejected, match=f"HTTP {status}") as caught:
        await debate_alone(httpserver, executor, agent, echo, status)
    assert not is_retryable_error(caught.value)
    assert "authentication_error ***" in str(caught.value)
    assert key not in error_text(caught.value)


@pytest.mark.parametrize(
    ("agent", "variable"),
    [("anthropic-api", "ANTHROPIC_API_KEY"), ("openai-api", "OPENAI_API_KEY")],
)
async def test_http_agent_missing_key_is_not_retryable(
    httpserver: HTTPServer, agent: str, variable: str
) -> None:
    settings = settings_for(httpserver.url_for(""))
    settings = dataclasses.replace(
        settings,
        anthropic=dataclasses.replace(settings.anthropic, api_key=None),
        openai=dataclasses.replace(settings.openai, api_key=""),
    )
    async with await create_default_executor(settings) as executor:
        with pytest.raises(AgentRejected, match=f"{variable} is not set") as caught:
            await executor(create_debate_job("q?", agents=["demo", agent], rounds=1))
    assert not is_retryable_error(caught.value)
    assert httpserver.log == []


async def test_http_agent_transport_failure_is_retryable() -> None:
    settings = settings_for(f"http://127.0.0.1:{closed_port()}")
    async with await create_default_executor(settings) as executor:
        with pytest.raises(AgentUnavailable, match="request failed") as caught:
            await executor(create_debate_job("q?", agents=["anthropic-api"], rounds=1))
    assert is_retryable_error(caught.value)
    assert ANTHROPIC_KEY not in error_text(caught.value)


async def test_http_agent_unreadable_answer_is_retryable(
    httpserver: HTTPServer, executor: DefaultDebateExecutor
) -> None:
    with pytest.raises(AgentUnavailable, match="unreadable") as caught:
        await debate_alone(httpserver, executor, "anthropic-api", {"content": []})
    assert is_retryable_error(caught.value)


async def test_debate_between_http_agents_reaches_majority_after_transcript(
    httpserver: HTTPServer, executor: DefaultDebateExecutor
) -> None:
    def openai_handler(request: Request) -> Response:
        prompt = request.get_json()["messages"][1]["content"]
        # Disagrees in round 1, then concedes after reading the transcript.
        answer = "no" if "This is round 1." in prompt else "yes"
        return Response(
            json.dumps(openai_answer(f"ANSWER: {answer}\nCONFIDENCE: 0.7")),
            content_type="application/json",
        )

    claude = anthropic_answer("ANSWER: Yes\nCONFIDENCE: 0.9")
    httpserver.expect_request("/v1/messages").respond_with_json(claude)
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(openai_handler)
    job = create_debate_job("Ship on Friday?", agents=["anthropic-api", "openai-api"], rounds=5)
    result = await executor(job)
    assert result.debate_id == job.id
    assert result.participants == ["anthropic-api", "openai-api"]
    assert (result.consensus_reached, result.rounds_used) == (True, 2)
    assert (result.final_answer, result.confidence) == ("yes", 0.8)
    assert result.token_usage == {"input": 2 * 11 + 2 * 13, "output": 2 * 7 + 2 * 5}
    assert len(httpserver.log) == 4
    round_two = [json.dumps(request_json(httpserver, index)[1]) for index in (2, 3)]
    assert all("[round 1] anthropic-api: ANSWER: Yes" in body for body in round_two)
    assert result.duration_seconds > 0


async def test_demo_debate_is_deterministic(executor: DefaultDebateExecutor) -> None:
    agents = ["demo", "demo-2", "demo-3"]
    question = await split_question(agents)
    first = await executor(create_debate_job(question, agents=agents, rounds=3))
    async with await create_default_executor(AgentSettings()) as other:
        second = await other(create_debate_job(question, agents=agents, rounds=3))
    second = dataclasses.replace(second, debate_id=first.debate_id)
    assert dataclasses.replace(first, duration_seconds=0) == dataclasses.replace(
        second, duration_seconds=0
    )
    assert first.token_usage["input"] > 0


async def test_demo_debate_without_majority_runs_every_round(
    executor: DefaultDebateExecutor,
) -> None:
    question = await split_question(["demo", "demo-2"])
    result = await executor(create_debate_job(question, agents=["demo", "demo-2"], rounds=3))
    assert (result.consensus_reached, result.rounds_used) == (False, 3)
    assert result.final_answer in {"yes", "no"}
    assert result.confidence < 0.5


@pytest.mark.parametrize(("consensus", "rounds_used"), [("majority", 1), ("unanimous", 2)])
async def test_executor_stops_early_when_consensus_is_met(
    executor: DefaultDebateExecutor, consensus: str, rounds_used: int
) -> None:
    agents = ["demo", "demo-2", "demo-3"]
    question = await split_question(agents)
    job = create_debate_job(question, agents=agents, rounds=5, consensus=consensus)
    result = await executor(job)
    assert (result.consensus_reached, result.rounds_used) == (True, rounds_used)


async def test_executor_judge_mode_uses_payload_judge(executor: DefaultDebateExecutor) -> None:
    agents = ["demo", "demo-2"]
    question = await split_question(agents)
    ruling = (await DemoAgent("demo-2").respond(question, [], 1)).answer
    job = create_debate_job(question, agents=agents, rounds=2, consensus="judge")
    job.payload["judge"] = "demo-2"
    result = await executor(job)
    assert result.final_answer == ruling
    assert (result.consensus_reached, result.rounds_used) == (False, 2)


@pytest.mark.parametrize(
    ("agents", "judge", "error"),
    [
        (["demo", "gpt-5"], None, AgentRejected),
        ([], None, InvalidJob),
        (["demo"], "demo-9", InvalidJob),
    ],
)
async def test_executor_rejects_bad_debates_without_retry(
    executor: DefaultDebateExecutor, agents: list[str], judge: str | None, error: type[Exception]
) -> None:
    job = create_debate_job("q?", agents=["demo"], rounds=1, consensus="judge")
    job.payload.update(agents=agents, judge=judge)
    with pytest.raises(error) as caught:
        await executor(job)
    assert not is_retryable_error(caught.value)


@pytest.mark.parametrize(
    ("text", "answer", "confidence"),
    [
        ("Because.\n**Answer:** Use Postgres.\nConfidence: 0.9", "use postgres", 0.9),
        ("ANSWER: yes\nCONFIDENCE: 250%", "yes", 1.0),
        ("Thinking...\n\nProbably not.\n", "probably not", 0.5),
    ],
)
def test_parse_reply_reads_answer_and_confidence_lines(
    text: str, answer: str, confidence: float
) -> None:
    reply = parse_reply(text, 3, 4)
    assert (reply.answer, reply.confidence, reply.output_tokens) == (answer, confidence, 4)


def test_settings_from_env_reads_variables_and_hides_keys() -> None:
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "OPENAI_BASE_URL": "http://127.0.0.1:9",
        "ARAGORA_OPENAI_MODEL": "gpt-test",
        "ARAGORA_AGENT_READ_TIMEOUT": "7.5",
        "ARAGORA_AGENT_MAX_TOKENS": "64",
    }
    settings = AgentSettings.from_env(env)
    assert settings.anthropic.api_key == ANTHROPIC_KEY
    assert settings.anthropic.base_url == ANTHROPIC_DEFAULTS.base_url
    assert settings.openai.api_key is None
    assert (settings.openai.base_url, settings.openai.model) == ("http://127.0.0.1:9", "gpt-test")
    assert (settings.read_timeout_seconds, settings.max_tokens) == (7.5, 64)
    assert ANTHROPIC_KEY not in repr(settings)


@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_settings_from_env_rejects_bad_numbers(value: str) -> None:
    with pytest.raises(ConfigError, match="ARAGORA_AGENT_CONNECT_TIMEOUT must be"):
        AgentSettings.from_env({"ARAGORA_AGENT_CONNECT_TIMEOUT": value})


def test_settings_rejects_non_positive_values() -> None:
    with pytest.raises(ConfigError, match="max_tokens must be positive"):
        AgentSettings(max_tokens=0)


@pytest.fixture
def custom_executors(monkeypatch: pytest.MonkeyPatch) -> str:
    """Install an importable module of executor factories and return its name."""
    module = types.ModuleType("custom_executors")
    module.make_demo = lambda: DefaultDebateExecutor(AgentSettings())  # type: ignore[attr-defined]
    module.make_nothing = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


async def test_load_executor_builds_from_sync_factory(custom_executors: str) -> None:
    executor = await load_executor(f"{custom_executors}.make_demo")
    assert isinstance(executor, DefaultDebateExecutor)
    async with executor:
        result = await executor(create_debate_job("Tea or coffee?", agents=["demo"]))
    assert result.consensus_reached


@pytest.mark.parametrize("path", [None, "", "workers.debate.executor.create_default_executor"])
async def test_load_executor_builds_default_executor(path: str | None) -> None:
    executor = await load_executor(path)
    assert isinstance(executor, DefaultDebateExecutor)
    await executor.aclose()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("executor", "is not of the form"),
        ("no_such_package_x.factory", "cannot import module 'no_such_package_x'"),
        ("workers.debate.executor.no_such_factory", "has no callable 'no_such_factory'"),
        ("workers.debate.executor.logger", "has no callable 'logger'"),
    ],
)
async def test_load_executor_rejects_bad_path(path: str, message: str) -> None:
    with pytest.raises(ImportError, match=message):
        await load_executor(path)


async def test_load_executor_rejects_factory_without_executor(custom_executors: str) -> None:
    with pytest.raises(TypeError, match="returned NoneType"):
        await load_executor(f"{custom_executors}.make_nothing")
