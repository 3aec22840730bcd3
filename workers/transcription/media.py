"""Media in, audio out: stage the job's input in a private folder, check it, extract its audio.

Every input becomes ``audio.flac`` (16 kHz mono) through ``ffmpeg``, so that video has its
audio track extracted and any container a backend may not know is normalised. Limits fail at
once and for good (``MediaRejected``): a path outside the media root, an unknown file type,
a file larger than ``max_bytes`` or media longer than ``max_duration_seconds``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from queue_app.queue import ConfigError, QueueError
from workers.webhooks import TargetRefused, resolve_target

from .config import TranscriptionConfig
from .jobs import TranscriptionRequest

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".mpga", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm", ".wma"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpeg", ".mpg", ".wmv", ".flv", ".3gp"}
)
#: The audio every backend receives.
AUDIO_NAME = "audio.flac"
AUDIO_MEDIA_TYPE = "audio/flac"


class MediaRejected(QueueError, ValueError):
    """The media cannot be transcribed; retrying will not help."""


class MediaUnavailable(QueueError, ConnectionError):
    """The media could not be fetched now; a later attempt may succeed."""


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffprobe saw in a file."""

    duration: float
    has_audio: bool
    has_video: bool


# -- tools ------------------------------------------------------------------------------------


async def run_tool(args: list[str], timeout: float) -> bytes:
    """Run ffmpeg or ffprobe; return its output (``MediaRejected`` when it cannot read)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise ConfigError(f"{args[0]} is not installed (bin/setup installs ffmpeg)") from None
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except BaseException:  # timeout or cancellation: never leave the process behind
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no detail"]
        raise MediaRejected(f"{args[0]} cannot read the media: {detail[0][:200]}")
    return out


async def probe(path: Path, timeout: float) -> Probe:
    """Return the duration and stream kinds of ``path``."""
    out = await run_tool(
        [
            *("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type"),
            *("-of", "json", str(path)),
        ],
        timeout,
    )
    data = json.loads(out or b"{}")
    kinds = {stream.get("codec_type") for stream in data.get("streams", [])}
    try:
        duration = float(data.get("format", {}).get("duration") or 0.0)
    except ValueError:
        duration = 0.0
    return Probe(duration, "audio" in kinds, "video" in kinds)


async def extract_audio(source: Path, target: Path, timeout: float) -> None:
    """Write the first audio track of ``source`` to ``target`` as 16 kHz mono FLAC."""
    await run_tool(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:a:0"),
            *("-vn", "-ac", "1", "-ar", "16000", "-c:a", "flac", str(target)),
        ],
        timeout,
    )


# -- inputs -----------------------------------------------------------------------------------


def check_type(path: Path) -> None:
    """Refuse file types that are neither audio nor video."""
    if path.suffix.lower() not in AUDIO_EXTENSIONS | VIDEO_EXTENSIONS:
        raise MediaRejected(f"unsupported media type {path.suffix or '(none)'!r}")


def check_size(size: int, limit: int) -> None:
    """Refuse files larger than ``limit`` bytes."""
    if size > limit:
        raise MediaRejected(f"media is {size} bytes, more than the limit of {limit}")


def local_file(path_text: str, media_root: str) -> Path:
    """Return the file ``path_text`` names, refusing anything outside ``media_root``."""
    if not media_root:
        raise MediaRejected("file_path inputs are disabled: no media root is configured")
    root = Path(media_root).resolve()
    path = (root / path_text).resolve()  # an absolute path_text replaces root here
    if not path.is_relative_to(root):
        raise MediaRejected("file_path is outside the media root")
    if not path.is_file():
        raise MediaRejected("file_path does not name a file in the media root")
    return path


def inline_file(data: str, extension: str, workdir: Path, limit: int) -> Path:
    """Decode base64 ``data`` into ``workdir`` as ``input<extension>``."""
    check_size(len(data) * 3 // 4, limit)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MediaRejected("file_data is not valid base64") from None
    path = workdir / f"input{extension}"
    check_type(path)
    path.write_bytes(content)
    return path


async def download(url: str, workdir: Path, config: TranscriptionConfig) -> Path:
    """Fetch ``url`` (a page yt-dlp knows, or a plain media URL) into ``workdir``."""
    try:
        await resolve_target(httpx.URL(url), config.allow_private_urls)
    except (TargetRefused, httpx.InvalidURL):
        raise MediaRejected("url must be a public http(s) URL") from None
    except OSError as error:
        raise MediaUnavailable(f"url host does not resolve: {error.strerror or error}") from None
    async with asyncio.timeout(config.tool_timeout):
        return await asyncio.to_thread(_download, url, workdir, config)


class _QuietLogger:
    """yt-dlp's log goes to DEBUG: its lines may carry the URL."""

    def debug(self, message: str) -> None:
        logger.debug("yt-dlp: %s", message)

    info = warning = debug

    def error(self, message: str) -> None:
        logger.debug("yt-dlp error: %s", message)


def _download(url: str, workdir: Path, config: TranscriptionConfig) -> Path:
    # Imported by the first download: yt-dlp weighs 26 MB, kept out of every worker process.
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadError

    options: dict[str, Any] = {
        "outtmpl": str(workdir / "download.%(ext)s"),
        "format": "bestaudio/best",
        "noplaylist": True,
        "max_filesize": config.max_bytes,
        "logger": _QuietLogger(),
        "noprogress": True,
        "socket_timeout": 30,
        "cachedir": False,
        "restrictfilenames": True,
    }
    try:
        with YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
            duration = float((info or {}).get("duration") or 0.0)
            if duration > config.max_duration_seconds:
                raise MediaRejected(_too_long(duration, config.max_duration_seconds))
            ydl.process_ie_result(info, download=True)
    except DownloadError as error:
        text = str(error)
        if "Unsupported URL" in text or "HTTP Error 4" in text:
            raise MediaRejected(f"url cannot be downloaded: {_reason(text)}") from None
        raise MediaUnavailable(f"download failed: {_reason(text)}") from None
    files = [p for p in workdir.glob("download.*") if p.suffix not in (".part", ".ytdl")]
    if not files:
        raise MediaRejected("url gave no media file (larger than the size limit?)")
    return files[0]


def _reason(text: str) -> str:
    """Return yt-dlp's reason without its prefix, short (no URL: they may carry tokens)."""
    reason = text.removeprefix("ERROR: ").split(";")[0]
    return reason.split("http", 1)[0].strip()[:200] or "unknown error"


def _too_long(duration: float, limit: float) -> str:
    return f"media lasts {duration:.0f} s, more than the limit of {limit:.0f} s"


# -- the whole step ---------------------------------------------------------------------------


async def stage_source(
    request: TranscriptionRequest, workdir: Path, config: TranscriptionConfig
) -> Path:
    """Return the job's media as a local file (inside ``workdir`` unless it is under the root)."""
    if request.file_path is not None:
        path = local_file(request.file_path, config.media_root)
        check_type(path)
    elif request.file_data is not None:
        extension = request.file_extension or (".mp4" if request.is_video else ".mp3")
        path = inline_file(request.file_data, extension, workdir, config.max_bytes)
    else:
        path = await download(str(request.url), workdir, config)
    check_size(path.stat().st_size, config.max_bytes)
    return path


async def prepare_audio(
    request: TranscriptionRequest, workdir: Path, config: TranscriptionConfig
) -> tuple[Path, Probe]:
    """Stage, check and convert the job's media; return the audio file and the probe."""
    source = await stage_source(request, workdir, config)
    seen = await probe(source, config.tool_timeout)
    if not seen.has_audio:
        raise MediaRejected("the media has no audio track")
    if seen.duration > config.max_duration_seconds:
        raise MediaRejected(_too_long(seen.duration, config.max_duration_seconds))
    audio = workdir / AUDIO_NAME
    await extract_audio(source, audio, config.tool_timeout)
    return audio, seen
