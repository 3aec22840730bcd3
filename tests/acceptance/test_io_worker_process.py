"""``manage.py queue_worker`` for the I/O kinds: a bad transcription setting stops it, one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_transcription_backend_exits_1_in_one_line(redis_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "ARAGORA_RUN_DIR": str(tmp_path),
        "ARAGORA_WHISPER_BACKEND_ORDER": "openai,cloud-magic",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "queue_worker", "--queues", "transcriptions", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [printed] = result.stderr.strip().splitlines()
    assert (
        printed == "CommandError: cannot start worker: unknown transcription backends: cloud-magic"
    )
