"""Settings of the transcription worker kind (``aragora_site.settings`` fills them from env)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The OpenAI API; any server speaking ``POST /v1/audio/transcriptions`` can replace it.
OPENAI_BASE_URL = "https://api.openai.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptionConfig:
    """Backends, limits and folders of the transcription worker."""

    #: Backends tried in this order (``openai``, ``faster-whisper``); unavailable ones skipped.
    backend_order: tuple[str, ...] = ("openai", "faster-whisper")
    #: Scheme and host of the OpenAI-compatible API, without ``/v1/...``.
    api_base_url: str = OPENAI_BASE_URL
    api_key: str = field(default="", repr=False)
    api_model: str = "whisper-1"
    #: Folder of a local faster-whisper (CTranslate2) model; empty: that backend is off.
    faster_whisper_model: str = ""
    #: ``file_path`` inputs must resolve inside this folder; empty: paths are refused.
    media_root: str = ""
    #: Where temporary files go (a private folder per job, always removed); empty: system temp.
    work_dir: str = ""
    #: Largest input file, and longest media, accepted.
    max_bytes: int = 100 * 1024 * 1024
    max_duration_seconds: float = 4 * 3600.0
    #: Download from private, loopback and link-local hosts (development and tests only).
    allow_private_urls: bool = False
    #: Seconds one backend call, and one ffmpeg or yt-dlp run, may take.
    request_timeout: float = 600.0
    tool_timeout: float = 600.0

    @property
    def api_configured(self) -> bool:
        """Tell whether the HTTP API can be used: a key, or a server of the operator's own."""
        return bool(self.api_key) or self.api_base_url.rstrip("/") != OPENAI_BASE_URL
