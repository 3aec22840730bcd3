"""Transcription jobs: job types, the payload as the worker reads it, enqueueing and recovery.

A payload names its media one way: ``file_path`` (a file under the worker's media root),
``file_data`` (base64, with ``file_extension``) or ``url`` (any page or media URL yt-dlp can
fetch; required by ``transcription_youtube``). ``language`` (ISO 639-1, e.g. ``en``) and
``backend`` (``openai`` or ``faster-whisper``) are optional; ``use_cache`` is accepted for the
reference's signature and ignored (downloads are never kept).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue

from ..jobs import check_payload_keys, recover_interrupted, scoped_job

TRANSCRIPTION_QUEUE = "transcriptions"
JOB_TYPE_TRANSCRIPTION = "transcription"
JOB_TYPE_TRANSCRIPTION_AUDIO = "transcription_audio"
JOB_TYPE_TRANSCRIPTION_VIDEO = "transcription_video"
JOB_TYPE_TRANSCRIPTION_YOUTUBE = "transcription_youtube"
JOB_TYPES = (
    JOB_TYPE_TRANSCRIPTION,
    JOB_TYPE_TRANSCRIPTION_AUDIO,
    JOB_TYPE_TRANSCRIPTION_VIDEO,
    JOB_TYPE_TRANSCRIPTION_YOUTUBE,
)
#: Backend names a payload may ask for.
BACKEND_NAMES = ("openai", "faster-whisper")
PAYLOAD_KEYS = frozenset(
    {"file_path", "file_data", "file_extension", "url", "language", "backend", "use_cache"}
    | {"timeout_seconds"}
)
#: Largest ``file_data`` accepted in a job (base64 characters): bigger media go by path or URL.
MAX_INLINE_CHARS = 16 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 3
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
EXTENSION = re.compile(r"^\.[a-z0-9]{1,8}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptionRequest:
    """What one transcription job asks for; exactly one of path, data and URL is set."""

    job_type: str
    file_path: str | None = None
    #: Base64 of the media (``file_extension`` names its type).
    file_data: str | None = None
    file_extension: str = ""
    url: str | None = None
    language: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.job_type not in JOB_TYPES:
            raise InvalidJob(f"job_type must be one of {', '.join(JOB_TYPES)}")
        sources = [s for s in (self.file_path, self.file_data, self.url) if s is not None]
        if len(sources) != 1 or not all(isinstance(s, str) and s for s in sources):
            raise InvalidJob("give exactly one of file_path, file_data and url (non-empty)")
        if self.job_type == JOB_TYPE_TRANSCRIPTION_YOUTUBE and self.url is None:
            raise InvalidJob("url is required for transcription_youtube")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise InvalidJob("url must be an http or https URL")
        if self.file_data is not None and len(self.file_data) > MAX_INLINE_CHARS:
            raise InvalidJob(f"file_data must be at most {MAX_INLINE_CHARS} base64 characters")
        if self.file_extension and not EXTENSION.match(self.file_extension):
            raise InvalidJob("file_extension must look like .mp3")
        if self.language is not None and not LANGUAGE.match(self.language):
            raise InvalidJob("language must be an ISO 639 code such as en or pt-BR")
        if self.backend is not None and self.backend not in BACKEND_NAMES:
            raise InvalidJob(f"backend must be one of {', '.join(BACKEND_NAMES)}")

    @property
    def is_video(self) -> bool:
        """Tell whether the job names video (its audio track is extracted first)."""
        return self.job_type == JOB_TYPE_TRANSCRIPTION_VIDEO

    @classmethod
    def from_payload(cls, job_type: str, payload: Mapping[str, Any]) -> TranscriptionRequest:
        """Read a payload (``InvalidJob`` for unknown keys or bad values)."""
        check_payload_keys(payload, PAYLOAD_KEYS, "transcription")
        extension = payload.get("file_extension") or ""
        if extension and not str(extension).startswith("."):
            extension = f".{extension}"
        return cls(
            job_type=job_type,
            file_path=payload.get("file_path"),
            file_data=payload.get("file_data"),
            file_extension=str(extension).lower(),
            url=payload.get("url"),
            language=payload.get("language") or None,
            backend=payload.get("backend") or None,
        )

    @classmethod
    def from_job(cls, job: Job) -> TranscriptionRequest:
        """Read the request of a transcription job."""
        return cls.from_payload(job.job_type, job.payload)


def create_transcription_job(
    job_type: str,
    payload: Mapping[str, Any],
    *,
    job_id: str | None = None,
    user_id: str | int | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Build a transcription job (``InvalidJob`` for a bad type or payload)."""
    TranscriptionRequest.from_payload(job_type, payload)
    return scoped_job(
        dict(payload),
        job_type,
        job_id=job_id,
        owner=None if user_id is None else str(user_id),
        organization=workspace_id,
        priority=priority,
        max_attempts=max_attempts,
    )


async def enqueue_transcription_job(
    queue: JobQueue,
    job_id: str | None,
    job_type: str,
    payload: Mapping[str, Any],
    user_id: str | int | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    queue_name: str = TRANSCRIPTION_QUEUE,
) -> Job:
    """Enqueue a transcription job on the ``transcriptions`` queue; return it."""
    job = create_transcription_job(
        job_type,
        payload,
        job_id=job_id,
        user_id=user_id,
        workspace_id=workspace_id,
        priority=priority,
    )
    await queue.enqueue(job, priority, queue_name)
    return job


async def recover_interrupted_transcriptions(
    queue: JobQueue, idle_ms: int | None = None, *, queue_name: str = TRANSCRIPTION_QUEUE
) -> int:
    """Take over transcription deliveries whose worker died; return how many.

    Only the ``transcriptions`` queue is touched. ``queue``'s consumer owns them afterwards:
    its next read starts them (call it from a transcription worker's queue). Workers do this
    on their own every ``claim_idle_ms / 2``; this is for not waiting at startup.
    """
    return await recover_interrupted(queue, idle_ms, queue_name)
