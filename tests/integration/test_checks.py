"""System checks of the queue settings: each bad value gives its error id, good ones none."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core import checks

from tests.obs_support import base_env, run_manage

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper


def ids() -> list[str]:
    messages = checks.run_checks(tags=[checks.Tags.compatibility])
    return sorted(m.id for m in messages if m.id and m.id.startswith("aragora"))


def test_default_settings_pass_every_check() -> None:
    assert ids() == []


def test_sentinel_url_and_replica_confirmations_pass_the_checks(settings: SettingsWrapper) -> None:
    settings.REDIS_URL = "redis+sentinel://:secret@127.0.0.1:26379,[::1]:26380,sentinel/aragora/2"
    settings.ARAGORA_QUEUE = {**settings.ARAGORA_QUEUE, "enqueue_replicas": "1"}
    assert ids() == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_URL", "http://127.0.0.1:6379", "aragora.E002"),
        ("REDIS_URL", "redis+sentinel://127.0.0.1:26379", "aragora.E002"),
        ("REDIS_URL", "redis+sentinel://127.0.0.1:x/aragora", "aragora.E002"),
        ("ARAGORA_QUEUE", {"enqueue_replicas": "-1"}, "aragora.E001"),
        ("ARAGORA_QUEUE", {"enqueue_wait_ms": "10000"}, "aragora.E001"),
        ("ARAGORA_QUEUE", {"claim_idle_ms": "5"}, "aragora.E001"),
        ("ARAGORA_QUEUE", {"no_such_key": "1"}, "aragora.E001"),
        ("ARAGORA_LEDGER_RETENTION_DAYS", 0, "aragora.E003"),
        ("ARAGORA_API_MAX_BODY_BYTES", "big", "aragora.E004"),
        ("ARAGORA_DEBATE_EXECUTOR", "no_such_module.factory", "aragora.E005"),
        ("ARAGORA_DEBATE_EXECUTOR", "workers.debate.executor.logger", "aragora.E005"),
        ("ARAGORA_EXPLAIN_GENERATOR", "no_such_module.factory", "aragora.E007"),
        ("ARAGORA_EXPLAIN_GENERATOR", "workers.batch.worker.logger", "aragora.E007"),
        ("ARAGORA_AGENT_ENV", {"ARAGORA_AGENT_MAX_TOKENS": "-1"}, "aragora.E006"),
        ("ARAGORA_HEALING_ENV", {"ARAGORA_HEALING_MAX_ATTEMPTS": "0"}, "aragora.E008"),
        ("ARAGORA_HEALING_ENV", {"ARAGORA_HEALING_AUTO_REDEBATE": "maybe"}, "aragora.E008"),
        ("TASKS", {}, "aragora.W001"),
        ("ARAGORA_WEBHOOK_SECRET_KEYS", ["not-a-fernet-key"], "aragora.E001"),
    ],
)
def test_bad_setting_gives_its_check_id(
    settings: SettingsWrapper, name: str, value: Any, expected: str
) -> None:
    if name == "ARAGORA_QUEUE":
        value = {**settings.ARAGORA_QUEUE, **value}
    try:
        setattr(settings, name, value)
    except Exception as error:  # the app rebuilds its config on change and refuses it at once
        assert expected == "aragora.E001", error
        return
    assert expected in ids()


def test_a_cluster_url_passes_the_checks(settings: SettingsWrapper) -> None:
    settings.REDIS_URL = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    assert ids() == []


@pytest.mark.parametrize(
    "command",
    [["check"], ["queue_worker", "--queues", "consensus_healing", "--burst"]],
    ids=["check", "queue_worker"],
)
def test_bad_healing_variable_is_a_check_error_not_a_traceback(
    command: list[str], redis_url: str, tmp_path: Path
) -> None:
    done = run_manage(base_env(redis_url, tmp_path, ARAGORA_HEALING_MAX_ATTEMPTS="0"), *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "(aragora.E008)" in done.stderr
    assert "ARAGORA_HEALING_MAX_ATTEMPTS must be at least 1" in done.stderr
