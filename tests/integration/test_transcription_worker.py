"""The transcription kind, built as ``queue_worker --queues transcriptions`` builds it.

Speech is made with espeak-ng and a small video with ffmpeg; a pytest-httpserver speaks the
OpenAI ``/v1/audio/transcriptions`` API (and checks the multipart request it receives) and
serves media files to the URL path, which goes through yt-dlp.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from queue_app.models import WebhookEndpoint
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue
from tests.kinds_support import run_kind
from workers import TranscriptionWorker, enqueue_transcription_job
from workers.transcription import TRANSCRIPTION_QUEUE, recover_interrupted_transcriptions
from workers.webhooks import WEBHOOKS_QUEUE

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

SPOKEN = "hello from the aragora queue"
API_PATH = "/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Make a spoken WAV (espeak-ng), a video with it as sound track, and a non-media file."""
    assert shutil.which("espeak-ng") and shutil.which("ffmpeg"), "run bin/setup --test"
    folder = tmp_path_factory.mktemp("media")
    wav, video, text = folder / "speech.wav", folder / "clip.mp4", folder / "notes.txt"
    subprocess.run(["espeak-ng", "-w", str(wav), SPOKEN], check=True)
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=64x48:d=3"),
            *("-i", str(wav), "-shortest", "-c:v", "mpeg4", "-c:a", "aac", str(video)),
        ],
        check=True,
    )
    text.write_text("not media")
    return {"wav": wav, "video": video, "text": text}


class TranscriptionAPI:
    """Answers ``POST /v1/audio/transcriptions`` like OpenAI; keeps what each request sent."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        upload = request.files["file"]
        audio = upload.read()
        self.requests.append(
            {
                "form": dict(request.form),
                "filename": upload.filename,
                "content_type": upload.content_type,
                "audio": audio,
                "authorization": request.headers.get("Authorization"),
            }
        )
        if len(self.requests) <= self.failures:
            return Response("overloaded", status=503)
        body = {
            "task": "transcribe",
            "language": "english",
            "duration": 1.5,
            "text": f" {SPOKEN}",
            "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": f" {SPOKEN}"}],
        }
        return Response(json_dumps(body), content_type="application/json")


def json_dumps(data: Any) -> str:
    return json.dumps(data)


def streams_of(data: bytes, folder: Path) -> list[tuple[str, str, int]]:
    """Return (codec type, codec, channels) of each stream of ``data``, read by ffprobe."""
    path = folder / "received.flac"
    path.write_bytes(data)
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,channels"),
            *("-of", "json", str(path)),
        ],
        check=True,
        capture_output=True,
    ).stdout
    return [(s["codec_type"], s["codec_name"], s["channels"]) for s in json.loads(out)["streams"]]


@pytest.fixture
def api(httpserver: HTTPServer) -> Callable[..., TranscriptionAPI]:
    def serve(failures: int = 0) -> TranscriptionAPI:
        handler = TranscriptionAPI(failures)
        httpserver.expect_request(API_PATH, method="POST").respond_with_handler(handler)
        return handler

    return serve


@pytest.fixture
def folders(tmp_path: Path, settings: SettingsWrapper, httpserver: HTTPServer) -> dict[str, Path]:
    """Point the kind's settings at the local API, a media root and a watched work folder."""
    root, work = tmp_path / "root", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    settings.ARAGORA_TRANSCRIPTION = {
        **settings.ARAGORA_TRANSCRIPTION,
        "api_base_url": httpserver.url_for("/").rstrip("/"),
        "api_key": "sk-test-key",
        "backend_order": ("openai", "faster-whisper"),
        "media_root": str(root),
        "work_dir": str(work),
        "allow_private_urls": True,
    }
    return {"root": root, "work": work}


async def transcribed(queue: RedisStreamsQueue, config: QueueConfig, job: Job) -> Job:
    """Run the transcription kind until its queue is empty; return ``job`` as it ended."""
    worker = await run_kind(TRANSCRIPTION_QUEUE, config)
    assert isinstance(worker, TranscriptionWorker)
    done = await queue.get_status(job.id)
    assert done is not None
    return done


async def test_transcription_by_path_posts_flac_and_returns_the_reference_result(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
) -> None:
    server = api()
    shutil.copy(media["wav"], folders["root"] / "speech.wav")
    job = await enqueue_transcription_job(
        queue, None, "transcription_audio", {"file_path": "speech.wav", "language": "en"}
    )
    done = await transcribed(queue, queue_config, job)
    assert done.status is JobStatus.COMPLETED, done.error
    result = done.result
    assert result["text"] == SPOKEN and result["backend"] == "openai"
    assert result["language"] == "english" and result["duration"] == 1.5
    assert result["segments"] == [{"start": 0.0, "end": 1.5, "text": SPOKEN}]
    assert result["status"] == "completed" and result["processing_time"] >= 0
    [sent] = server.requests
    assert sent["form"]["model"] == "whisper-1" and sent["form"]["language"] == "en"
    assert sent["form"]["response_format"] == "verbose_json"
    assert sent["authorization"] == "Bearer sk-test-key"
    assert sent["filename"] == "audio.flac" and sent["content_type"] == "audio/flac"
    assert sent["audio"].startswith(b"fLaC")
    assert list(folders["work"].iterdir()) == []  # temporary files removed


async def test_video_by_base64_has_its_audio_extracted(
    tmp_path: Path,
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
) -> None:
    server = api()
    data = base64.b64encode(media["video"].read_bytes()).decode()
    payload = {"file_data": data, "file_extension": "mp4"}
    job = await enqueue_transcription_job(queue, "video-1", "transcription_video", payload)
    done = await transcribed(queue, queue_config, job)
    assert done.status is JobStatus.COMPLETED, done.error
    [sent] = server.requests
    assert streams_of(sent["audio"], tmp_path) == [("audio", "flac", 1)]  # the video is gone
    assert job.id == "video-1" and list(folders["work"].iterdir()) == []


async def test_media_url_is_downloaded_with_yt_dlp(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
    httpserver: HTTPServer,
) -> None:
    server = api()
    wav = media["wav"].read_bytes()
    httpserver.expect_request("/files/speech.wav").respond_with_data(wav, content_type="audio/wav")
    url = httpserver.url_for("/files/speech.wav")
    job = await enqueue_transcription_job(queue, None, "transcription", {"url": url})
    done = await transcribed(queue, queue_config, job)
    assert done.status is JobStatus.COMPLETED, done.error
    assert any(request.path == "/files/speech.wav" for request, _ in httpserver.log)
    assert len(server.requests) == 1 and done.result["text"] == SPOKEN
    assert list(folders["work"].iterdir()) == []


@pytest.mark.parametrize(
    ("payload", "limits", "message"),
    [
        ({"file_path": "../outside.wav"}, {}, "outside the media root"),
        ({"file_path": "/etc/passwd"}, {}, "outside the media root"),
        ({"file_data": "bm90IG1lZGlh", "file_extension": ".txt"}, {}, "unsupported media type"),
        ({"file_path": "speech.wav"}, {"max_bytes": 1000}, "more than the limit"),
        ({"file_path": "speech.wav"}, {"max_duration_seconds": 0.5}, "more than the limit"),
        ({"file_path": "notes.mp3"}, {}, "cannot read the media"),
    ],
)
async def test_limits_fail_at_once_without_calling_the_api(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
    settings: SettingsWrapper,
    payload: dict[str, Any],
    limits: dict[str, Any],
    message: str,
) -> None:
    server = api()
    settings.ARAGORA_TRANSCRIPTION = {**settings.ARAGORA_TRANSCRIPTION, **limits}
    shutil.copy(media["wav"], folders["root"] / "speech.wav")
    shutil.copy(media["wav"], folders["root"].parent / "outside.wav")
    shutil.copy(media["text"], folders["root"] / "notes.mp3")
    job = await enqueue_transcription_job(queue, None, "transcription_audio", payload)
    done = await transcribed(queue, queue_config, job)
    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert message in (done.error or "")
    assert server.requests == [] and list(folders["work"].iterdir()) == []


async def test_unavailable_api_is_retried_with_backoff_then_completes(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
) -> None:
    server = api(failures=2)
    shutil.copy(media["wav"], folders["root"] / "speech.wav")
    job = await enqueue_transcription_job(queue, None, "transcription", {"file_path": "speech.wav"})
    done = await transcribed(queue, queue_config, job)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 3)
    assert len(server.requests) == 3


async def test_no_backend_available_fails_with_a_clear_error(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    folders: dict[str, Path],
    settings: SettingsWrapper,
) -> None:
    settings.ARAGORA_TRANSCRIPTION = {
        **settings.ARAGORA_TRANSCRIPTION,
        "backend_order": ("faster-whisper",),
        "faster_whisper_model": str(folders["root"] / "no-model-here"),
    }
    job = await enqueue_transcription_job(queue, None, "transcription", {"file_path": "x.wav"})
    done = await transcribed(queue, queue_config, job)
    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert "no transcription backend is available" in (done.error or "")


def _endpoint(events: list[str]) -> int:
    try:
        endpoint = WebhookEndpoint.objects.create(
            url="https://hooks.example.com/t",
            secret="s" * 32,
            event_types=events,
            organization="acme",
        )
        return endpoint.pk
    finally:
        connection.close()


async def test_events_become_webhook_jobs_for_subscribed_endpoints(
    queue: RedisStreamsQueue,
    queue_config: QueueConfig,
    media: dict[str, Path],
    folders: dict[str, Path],
    api: Callable[..., TranscriptionAPI],
) -> None:
    api()
    pk = await sync_to_async(_endpoint)(["transcription.started", "transcription.completed"])
    await sync_to_async(_endpoint)(["job.completed"])
    shutil.copy(media["wav"], folders["root"] / "speech.wav")
    job = await enqueue_transcription_job(
        queue, None, "transcription", {"file_path": "speech.wav"}, workspace_id="acme"
    )
    assert (await transcribed(queue, queue_config, job)).status is JobStatus.COMPLETED
    events = await queue.dequeue_many("reader", 10, 100, [WEBHOOKS_QUEUE])
    seen = {(e.payload["webhook_id"], e.payload["event_type"]) for e in events}
    assert seen == {(str(pk), "transcription.started"), (str(pk), "transcription.completed")}
    completed = next(e for e in events if e.payload["event_type"] == "transcription.completed")
    assert completed.payload["event_data"]["job_id"] == job.id
    assert completed.payload["event_data"]["backend"] == "openai"


async def test_recovery_takes_over_only_transcription_deliveries(
    make_queue: Any, queue: RedisStreamsQueue
) -> None:
    await enqueue_transcription_job(queue, "t-1", "transcription", {"url": "https://x.test/a.mp3"})
    await queue.enqueue(Job(payload={}, metadata={"job_type": "noop"}), queue_name="diagnostics")
    dead = await make_queue("dead-1")
    taken = await dead.dequeue_many("dead-1", 10, 100, [TRANSCRIPTION_QUEUE, "diagnostics"])
    assert len(taken) == 2
    rescuer = await make_queue("rescuer")
    assert await recover_interrupted_transcriptions(rescuer, idle_ms=0) == 1
    [job] = await rescuer.dequeue_many("rescuer", 10, 100, [TRANSCRIPTION_QUEUE])
    assert job.id == "t-1" and job.attempts == 2
