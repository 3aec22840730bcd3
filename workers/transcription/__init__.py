"""The transcription worker kind: ``TranscriptionWorker``, its jobs, media handling, backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .backends import (
        BackendRejected,
        BackendUnavailable,
        FasterWhisperBackend,
        OpenAICompatibleBackend,
        Segment,
        Transcript,
        TranscriptionBackend,
    )
    from .config import TranscriptionConfig
    from .jobs import (
        JOB_TYPE_TRANSCRIPTION,
        JOB_TYPE_TRANSCRIPTION_AUDIO,
        JOB_TYPE_TRANSCRIPTION_VIDEO,
        JOB_TYPE_TRANSCRIPTION_YOUTUBE,
        TRANSCRIPTION_QUEUE,
        TranscriptionRequest,
        create_transcription_job,
        enqueue_transcription_job,
        recover_interrupted_transcriptions,
    )
    from .media import MediaRejected, MediaUnavailable
    from .worker import (
        EVENT_COMPLETED,
        EVENT_FAILED,
        EVENT_STARTED,
        TRANSCRIPTION_EVENTS,
        EventSink,
        TranscriptionWorker,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".backends": (
            "BackendRejected",
            "BackendUnavailable",
            "FasterWhisperBackend",
            "OpenAICompatibleBackend",
            "Segment",
            "Transcript",
            "TranscriptionBackend",
        ),
        ".config": ("TranscriptionConfig",),
        ".jobs": (
            "JOB_TYPE_TRANSCRIPTION",
            "JOB_TYPE_TRANSCRIPTION_AUDIO",
            "JOB_TYPE_TRANSCRIPTION_VIDEO",
            "JOB_TYPE_TRANSCRIPTION_YOUTUBE",
            "TRANSCRIPTION_QUEUE",
            "TranscriptionRequest",
            "create_transcription_job",
            "enqueue_transcription_job",
            "recover_interrupted_transcriptions",
        ),
        ".media": ("MediaRejected", "MediaUnavailable"),
        ".worker": (
            "EVENT_COMPLETED",
            "EVENT_FAILED",
            "EVENT_STARTED",
            "TRANSCRIPTION_EVENTS",
            "EventSink",
            "TranscriptionWorker",
        ),
    },
)

__all__ = [
    "EVENT_COMPLETED",
    "EVENT_FAILED",
    "EVENT_STARTED",
    "JOB_TYPE_TRANSCRIPTION",
    "JOB_TYPE_TRANSCRIPTION_AUDIO",
    "JOB_TYPE_TRANSCRIPTION_VIDEO",
    "JOB_TYPE_TRANSCRIPTION_YOUTUBE",
    "TRANSCRIPTION_EVENTS",
    "TRANSCRIPTION_QUEUE",
    "BackendRejected",
    "BackendUnavailable",
    "EventSink",
    "FasterWhisperBackend",
    "MediaRejected",
    "MediaUnavailable",
    "OpenAICompatibleBackend",
    "Segment",
    "Transcript",
    "TranscriptionBackend",
    "TranscriptionConfig",
    "TranscriptionRequest",
    "TranscriptionWorker",
    "create_transcription_job",
    "enqueue_transcription_job",
    "recover_interrupted_transcriptions",
]
