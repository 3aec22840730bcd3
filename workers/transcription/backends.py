"""Transcription backends behind one small interface, and the choice among them.

- ``openai``: any server speaking OpenAI's ``POST /v1/audio/transcriptions`` (OpenAI itself, a
  self-hosted Whisper server, a compatible service), asked for ``verbose_json`` with segments.
- ``faster-whisper``: the optional ``faster-whisper`` package (``pip install
  aragora-queue[whisper]``) with a model already on disk; models are never downloaded.

``choose_backends`` keeps the configured order, skipping backends that are not available; the
worker tries them in turn while they fail with retryable errors.
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from queue_app.queue import ConfigError, QueueError

from .config import TranscriptionConfig
from .media import AUDIO_MEDIA_TYPE


class BackendRejected(QueueError, ValueError):
    """The backend refused the audio or the request; retrying will not help."""


class BackendUnavailable(QueueError, ConnectionError):
    """The backend could not transcribe now; another backend or attempt may succeed."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech, in seconds from the start."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    """What a backend heard."""

    text: str
    language: str | None
    #: Seconds of audio (the backend's count; the worker falls back to ffprobe's).
    duration: float | None
    segments: list[Segment] = field(default_factory=list)


class TranscriptionBackend(Protocol):
    """One way of turning an audio file into text."""

    #: Name in settings, payloads and results (``openai``, ``faster-whisper``).
    name: str

    def available(self) -> bool:
        """Tell whether the backend can run here (configured, installed, model on disk)."""
        ...

    async def transcribe(self, audio: Path, language: str | None) -> Transcript:
        """Transcribe ``audio`` (``language`` None: detect it)."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds."""
        ...


class OpenAICompatibleBackend:
    """``POST {base_url}/v1/audio/transcriptions`` with the audio as multipart form data."""

    name = "openai"
    PATH = "/v1/audio/transcriptions"

    def __init__(self, config: TranscriptionConfig) -> None:
        self.config = config
        self.url = config.api_base_url.rstrip("/") + self.PATH
        timeout = httpx.Timeout(config.request_timeout, connect=10.0)
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False)

    def available(self) -> bool:
        """Tell whether a key or a server of the operator's own is configured."""
        return self.config.api_configured

    async def transcribe(self, audio: Path, language: str | None) -> Transcript:
        """Send the audio; raise ``BackendRejected`` (4xx) or ``BackendUnavailable``."""
        form = {"model": self.config.api_model, "response_format": "verbose_json"}
        form["timestamp_granularities[]"] = "segment"
        if language:
            form["language"] = language.split("-")[0]
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        files = {"file": (audio.name, audio.read_bytes(), AUDIO_MEDIA_TYPE)}
        try:
            response = await self._client.post(self.url, data=form, files=files, headers=headers)
        except httpx.HTTPError as error:
            raise BackendUnavailable(f"transcription API: {type(error).__name__}") from None
        code = response.status_code
        if code in (408, 429) or code >= 500:
            raise BackendUnavailable(f"transcription API answered HTTP {code}")
        if code >= 400:
            raise BackendRejected(f"transcription API refused the audio: HTTP {code}")
        try:
            return parse_verbose_json(response.json())
        except (ValueError, TypeError, KeyError) as error:
            raise BackendUnavailable(f"transcription API answer unreadable: {error}") from None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def parse_verbose_json(data: Any) -> Transcript:
    """Read a ``verbose_json`` (or plain ``json``) transcription answer."""
    segments = [
        Segment(float(item["start"]), float(item["end"]), str(item["text"]).strip())
        for item in data.get("segments") or ()
    ]
    duration = data.get("duration")
    return Transcript(
        text=str(data["text"]).strip(),
        language=data.get("language") or None,
        duration=float(duration) if duration is not None else None,
        segments=segments,
    )


class FasterWhisperBackend:
    """Local transcription with faster-whisper and a model folder already on disk."""

    name = "faster-whisper"

    def __init__(self, config: TranscriptionConfig) -> None:
        self.model_path = config.faster_whisper_model
        self._model: Any = None
        self._lock = asyncio.Lock()

    def available(self) -> bool:
        """Tell whether faster-whisper is installed and the model folder exists."""
        if not self.model_path or not Path(self.model_path).is_dir():
            return False
        return importlib.util.find_spec("faster_whisper") is not None

    async def transcribe(self, audio: Path, language: str | None) -> Transcript:
        """Load the model once (local files only), then transcribe in a thread."""
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(self._load)
        return await asyncio.to_thread(self._run, audio, language)

    def _load(self) -> Any:
        from faster_whisper import WhisperModel

        return WhisperModel(self.model_path, device="cpu", local_files_only=True)

    def _run(self, audio: Path, language: str | None) -> Transcript:
        pieces, info = self._model.transcribe(str(audio), language=language)
        segments = [Segment(float(s.start), float(s.end), s.text.strip()) for s in pieces]
        return Transcript(
            text=" ".join(segment.text for segment in segments).strip(),
            language=info.language,
            duration=float(info.duration),
            segments=segments,
        )

    async def aclose(self) -> None:
        """Drop the model."""
        self._model = None


#: Backend classes by name.
BACKENDS: dict[str, type[OpenAICompatibleBackend] | type[FasterWhisperBackend]] = {
    OpenAICompatibleBackend.name: OpenAICompatibleBackend,
    FasterWhisperBackend.name: FasterWhisperBackend,
}


def build_backends(config: TranscriptionConfig) -> list[TranscriptionBackend]:
    """Build the backends of ``config.backend_order`` (``ConfigError`` for an unknown name)."""
    unknown = [name for name in config.backend_order if name not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown transcription backends: {', '.join(unknown)}")
    return [BACKENDS[name](config) for name in config.backend_order]


def choose_backends(
    backends: list[TranscriptionBackend], wanted: str | None
) -> list[TranscriptionBackend]:
    """Return the available backends to try, in order (only ``wanted`` when given)."""
    candidates = [b for b in backends if wanted is None or b.name == wanted]
    usable = [b for b in candidates if b.available()]
    if not usable:
        which = f"backend {wanted!r} is" if wanted else "no transcription backend is"
        raise ConfigError(
            f"{which} available: set ARAGORA_TRANSCRIPTION_API_KEY or _BASE_URL, "
            "or ARAGORA_FASTER_WHISPER_MODEL with faster-whisper installed"
        )
    return usable
