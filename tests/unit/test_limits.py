"""Debate bounds and strict configuration parsing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from queue_app.queue import ConfigError, InvalidJob, QueueConfig, create_debate_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rounds": 1_000_000_000}, "rounds must be between 1 and 20"),
        ({"rounds": 0}, "rounds must be between 1 and 20"),
        ({"agents": [f"demo-{i}" for i in range(11)]}, "agents must list at most 10 agents"),
        ({"question": "x" * 10_001}, "question must be at most 10000 characters"),
    ],
)
def test_debate_bounds_refuse_oversized_debates(options: dict[str, object], message: str) -> None:
    arguments = {"question": "Ship it?", "agents": ["demo"], **options}
    with pytest.raises(InvalidJob, match=message):
        create_debate_job(**arguments)  # type: ignore[arg-type]


def test_debate_without_timeout_gets_the_default() -> None:
    job = create_debate_job("Ship it?", agents=["demo"])
    assert job.payload["timeout_seconds"] == QueueConfig().debate_timeout_seconds == 1800
    assert create_debate_job("Ship it?", timeout_seconds=5).payload["timeout_seconds"] == 5


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("ARAGORA_QUEUE_MAX_TTL_DAYS", "1_0", "ARAGORA_QUEUE_MAX_TTL_DAYS must be an integer"),
        (
            "ARAGORA_QUEUE_RETRY_BASE_DELAY",
            "1e1",
            "ARAGORA_QUEUE_RETRY_BASE_DELAY must be a number",
        ),
        (
            "ARAGORA_QUEUE_RETRY_BASE_DELAY",
            "nan",
            "ARAGORA_QUEUE_RETRY_BASE_DELAY must be a number",
        ),
        ("ARAGORA_QUEUE_CLAIM_IDLE_MS", "5", "ARAGORA_QUEUE_CLAIM_IDLE_MS must be between"),
        ("ARAGORA_DEBATE_MAX_ROUNDS", "0", "ARAGORA_DEBATE_MAX_ROUNDS must be between"),
    ],
)
def test_config_parsing_is_strict_and_names_the_variable(
    variable: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        QueueConfig.from_env({variable: raw})


def test_plain_numbers_parse() -> None:
    config = QueueConfig.from_env(
        {"ARAGORA_QUEUE_MAX_TTL_DAYS": "10", "ARAGORA_QUEUE_RETRY_BASE_DELAY": "0.5"}
    )
    assert (config.max_job_ttl_days, config.retry_base_delay) == (10, 0.5)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("ARAGORA_LOG_LEVEL", "LOUD"), ("ARAGORA_LEDGER_RETENTION_DAYS", "3_0")],
)
def test_bad_django_setting_is_one_line_naming_its_variable(variable: str, raw: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", variable: raw},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr.strip().splitlines()[-1]
