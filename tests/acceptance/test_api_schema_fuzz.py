"""schemathesis against the served site: every operation of /api/schema/, ``--checks all``, as
staff and as a member of an organization. It must find nothing.

The site runs as `make run` serves it (``bin/serve``). Private webhook targets are allowed here:
"a public address" is the one rule of the API the schema cannot state (its tests are in
``tests/integration/test_api_webhooks.py``). The number of examples per operation is bounded so
that the run stays short; ``SCHEMATHESIS_EXAMPLES`` raises it for a longer hunt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.obs_support import ROOT, Process, base_env, start_web, wait_ready

if TYPE_CHECKING:
    from tests.conftest import RedisServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "15")
CREATE_USERS = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from queue_app.models import OrganizationMembership
staff = User.objects.create_user("staff", is_staff=True)
member = User.objects.create_user("member")
OrganizationMembership.objects.create(user=member, organization="acme")
print(Token.objects.create(user=staff).key, Token.objects.create(user=member).key)
"""


@pytest.fixture(scope="module")
def site(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """Serve the site; return its URL and an API token per user kind."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    env = base_env(
        redis_server.url,
        tmp_path,
        ARAGORA_WEBHOOK_ALLOW_PRIVATE="true",
        ARAGORA_LOG_LEVEL="CRITICAL",
        GRANIAN_LOG_ACCESS_ENABLED="false",
    )
    server: Process
    server, url = start_web(env, tmp_path / "web.log")
    try:
        wait_ready(f"{url}/healthz", server)
        shell = [sys.executable, "manage.py", "shell", "--no-imports", "-c", CREATE_USERS]
        done = subprocess.run(shell, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        staff, member = done.stdout.split()[-2:]
        yield url, {"staff": staff, "member": member}
    finally:
        server.stop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("user", "seed"), [("staff", "1"), ("member", "2")])
def test_api_schema_fuzz_finds_nothing(
    site: tuple[str, dict[str, str]], user: str, seed: str, tmp_path: Path
) -> None:
    url, tokens = site
    schemathesis = Path(sys.executable).with_name("schemathesis")
    args = [schemathesis, "--config-file", CONFIG, "run", f"{url}/api/schema/"]
    args += ["--checks", "all", "--max-examples", EXAMPLES, "--seed", seed]
    args += ["--header", f"Authorization: Token {tokens[user]}", "--no-color"]
    # Its own folder: schemathesis and hypothesis keep state in the working directory.
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=560)
    summary = done.stdout[done.stdout.rfind("SUMMARY") - 40 :]
    print(f"schemathesis as {user}:\n{summary}")
    assert done.returncode == 0, done.stdout[-20_000:]
