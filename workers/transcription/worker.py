"""TranscriptionWorker: the worker of the ``transcriptions`` queue, one media file a job.

Each job's media is staged in a private temporary folder (removed whatever happens), checked
against the limits, converted to 16 kHz mono FLAC by ffmpeg (video: its audio track), then
transcribed by the first available backend of the configured order; a backend failing with a
retryable error hands over to the next. Events ``transcription.started``, ``.completed`` and
``.failed`` go to the job's ``EventSink`` (webhook endpoints subscribed to them).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, Unpack

from queue_app.queue import Job, JobQueue, QueueError, RetryPolicy, is_retryable_error

from ..metrics import record_transcription
from ..runtime import (
    KindContext,
    KindWorker,
    RuntimeArguments,
    WorkerOptions,
    log_extra,
    report_progress,
)
from .backends import (
    BackendUnavailable,
    Transcript,
    TranscriptionBackend,
    build_backends,
    choose_backends,
)
from .config import TranscriptionConfig
from .jobs import JOB_TYPES, TRANSCRIPTION_QUEUE, TranscriptionRequest
from .media import Probe, prepare_audio

logger = logging.getLogger(__name__)

EVENT_STARTED = "transcription.started"
EVENT_COMPLETED = "transcription.completed"
EVENT_FAILED = "transcription.failed"
#: Webhook event types of the transcription kind.
TRANSCRIPTION_EVENTS = (EVENT_STARTED, EVENT_COMPLETED, EVENT_FAILED)


class EventSink(Protocol):
    """Where job events go (the Django layer: one webhook job per subscribed endpoint)."""

    async def emit(
        self, queue: JobQueue, job: Job, event_type: str, data: Mapping[str, Any]
    ) -> None:
        """Emit ``event_type`` about ``job`` with ``data``, enqueueing on ``queue``."""
        ...


class TranscriptionWorker(KindWorker):
    """Worker for the ``transcriptions`` queue: each job transcribes one audio or video."""

    QUEUE_NAME: ClassVar[str] = TRANSCRIPTION_QUEUE
    #: Jobs at once without ``--concurrency`` (README): local transcription and ffmpeg use the CPU.
    DEFAULT_CONCURRENCY: ClassVar[int] = 2

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        max_concurrent: int = 2,
        retry_policy: RetryPolicy | None = None,
        *,
        config: TranscriptionConfig | None = None,
        backends: list[TranscriptionBackend] | None = None,
        event_emitter: EventSink | None = None,
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.config = config or TranscriptionConfig()
        self.backends = backends if backends is not None else build_backends(self.config)
        self.event_emitter = event_emitter
        super().__init__(
            queue,
            dict.fromkeys(JOB_TYPES, self.transcribe),
            worker_id,
            max_concurrent,
            retry_policy=retry_policy,
            closers=[backend.aclose for backend in self.backends],
            **runtime,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> TranscriptionWorker:
        """Build the worker with the transcription settings and event sink of ``context``."""
        return cls(
            queue,
            options.worker_id,
            cls.concurrency(options),
            config=context.transcription,
            event_emitter=context.event_sink,
            **context.runtime_arguments(options),
        )

    async def transcribe(self, job: Job) -> dict[str, Any]:
        """Transcribe the job's media; return the reference's result shape."""
        request = TranscriptionRequest.from_job(job)
        started = time.perf_counter()
        await self._emit(job, EVENT_STARTED, {"worker_id": self.worker_id})
        try:
            transcript, backend, seen = await self._run(request)
        except Exception as error:
            final = job.attempts >= job.max_attempts or not is_retryable_error(error)
            await self._emit(job, EVENT_FAILED, {"error": type(error).__name__, "final": final})
            raise
        elapsed = round(time.perf_counter() - started, 3)
        duration = transcript.duration if transcript.duration is not None else seen.duration
        record_transcription(backend, "completed", duration)
        await self._emit(job, EVENT_COMPLETED, {"duration_seconds": elapsed, "backend": backend})
        return {
            "status": "completed",
            "text": transcript.text,
            "language": transcript.language or request.language,
            "duration": round(duration, 3),
            "segments": [
                {"start": s.start, "end": s.end, "text": s.text} for s in transcript.segments
            ],
            "backend": backend,
            "processing_time": elapsed,
            "duration_seconds": elapsed,
        }

    async def _run(self, request: TranscriptionRequest) -> tuple[Transcript, str, Probe]:
        backends = choose_backends(self.backends, request.backend)
        root = self.config.work_dir or None
        with tempfile.TemporaryDirectory(prefix="aragora-transcription-", dir=root) as folder:
            await report_progress({"stage": "preparing"})
            audio, seen = await prepare_audio(request, Path(folder), self.config)
            await report_progress({"stage": "transcribing", "duration": seen.duration})
            transcript, backend = await self._transcribe(backends, audio, request.language)
        return transcript, backend, seen

    async def _transcribe(
        self, backends: list[TranscriptionBackend], audio: Path, language: str | None
    ) -> tuple[Transcript, str]:
        """Try the backends in turn while they are unavailable; raise the last such error."""
        for index, backend in enumerate(backends):
            try:
                return await backend.transcribe(audio, language), backend.name
            except BackendUnavailable:
                record_transcription(backend.name, "unavailable")
                if index == len(backends) - 1:
                    raise
                logger.warning(
                    "transcription backend %s unavailable, trying the next", backend.name
                )
            except Exception:
                record_transcription(backend.name, "rejected")
                raise
        raise AssertionError("choose_backends returns at least one backend")

    async def _emit(self, job: Job, event_type: str, data: dict[str, Any]) -> None:
        if self.event_emitter is None:
            return
        event = {"job_id": job.id, "job_type": job.job_type, "attempt": job.attempts, **data}
        try:
            await self.event_emitter.emit(self.queue, job, event_type, event)
        except QueueError as error:  # an event never decides the job's outcome
            logger.warning(
                "event %s not emitted: %s",
                event_type,
                error,
                extra=log_extra(job, "transcription.event_lost"),
            )
