"""The worker packages export their names lazily: each name resolves, a kind loads alone."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import workers

PACKAGES = [
    "workers",
    "workers.agents",
    "workers.batch",
    "workers.debate",
    "workers.gauntlet",
    "workers.healing",
    "workers.routing",
    "workers.transcription",
    "workers.webhooks",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_lazy_exports_every_public_name_resolves_and_is_listed(name: str) -> None:
    package = importlib.import_module(name)
    for public in package.__all__:
        assert getattr(package, public) is not None, public
    assert set(package.__all__) <= set(dir(package))


def test_lazy_exports_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchWorker'"):
        _ = workers.NoSuchWorker
    with pytest.raises(ImportError):
        from workers.webhooks import NoSuchName  # noqa: F401


def test_worker_kind_classes_name_each_kinds_own_queue() -> None:
    kinds = {queue: workers.worker_kind(queue) for queue in workers.WORKER_KIND_CLASSES}

    assert [kind.QUEUE_NAME for kind in kinds.values()] == list(kinds)
    assert kinds == workers.WORKER_KINDS


def imported_after(code: str) -> set[str]:
    """Return the modules a fresh interpreter has imported after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, text=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_worker_kind_imports_that_kind_only() -> None:
    modules = imported_after("import workers; workers.worker_kind('diagnostics')")

    assert "workers.diagnostics" in modules
    others = ("httpx", "cryptography.fernet", "workers.debate", "workers.webhooks", "workers.batch")
    assert sorted(m for m in modules if m.startswith(others)) == []


def test_agent_settings_load_without_an_http_client() -> None:
    modules = imported_after(
        "from workers import AgentSettings, HealingConfig; AgentSettings.from_env({})"
    )

    assert "workers.agents.settings" in modules
    assert sorted(m for m in modules if m.startswith(("httpx", "workers.healing.worker"))) == []
