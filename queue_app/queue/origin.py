"""Where a debate was asked (its origin), so that its result can be routed back there.

The origin is recorded when the debate is enqueued (``create_debate_job(..., origin=...)`` or the
REST field ``payload.origin``) and stored in the job's metadata under ``"origin"``, never in its
payload: an incoming-webhook URL carries its own token, and the API shows payloads, not
metadata. The routing worker (``workers.routing``) reads it back when the debate finishes.

| platform   | target                                                     |
|------------|------------------------------------------------------------|
| `slack`    | a Slack incoming-webhook URL                               |
| `discord`  | a Discord webhook URL                                      |
| `teams`    | a Microsoft Teams incoming-webhook (or Workflows) URL      |
| `telegram` | a chat id (`123`, `-100123`) or `@channelname`             |
| `webhook`  | the id of a registered webhook endpoint (signed delivery)  |
| `email`    | an email address                                           |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .base import Job
from .errors import InvalidJob

#: Metadata key of a job's origin.
ORIGIN_KEY = "origin"
#: Platforms whose target is an incoming-webhook URL.
URL_PLATFORMS = ("slack", "discord", "teams")
ORIGIN_PLATFORMS = (*URL_PLATFORMS, "telegram", "webhook", "email")
MAX_TARGET_LENGTH = 2000
TELEGRAM_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
EMAIL_ADDRESS = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebateOrigin:
    """The platform a debate came from and the target to answer on (kept out of reprs)."""

    platform: str
    target: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.platform not in ORIGIN_PLATFORMS:
            known = ", ".join(ORIGIN_PLATFORMS)
            raise InvalidJob(f"origin platform must be one of {known}, got {self.platform!r}")
        if not isinstance(self.target, str) or not 0 < len(self.target) <= MAX_TARGET_LENGTH:
            raise InvalidJob(f"origin target must be 1 to {MAX_TARGET_LENGTH} characters")
        problem = _target_problem(self.platform, self.target)
        if problem:
            raise InvalidJob(f"origin target {problem}")

    def to_dict(self) -> dict[str, str]:
        """Return the origin as stored in job metadata."""
        return {"platform": self.platform, "target": self.target}

    @classmethod
    def from_value(cls, value: DebateOrigin | Mapping[str, Any]) -> DebateOrigin:
        """Return ``value`` as an origin (``InvalidJob`` when it is not one)."""
        if isinstance(value, DebateOrigin):
            return value
        if not isinstance(value, Mapping) or set(value) - {"platform", "target"}:
            raise InvalidJob("origin must be an object with platform and target")
        return cls(platform=str(value.get("platform", "")), target=value.get("target", ""))


def _target_problem(platform: str, target: str) -> str:
    if platform in URL_PLATFORMS:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"must be the http(s) webhook URL of the {platform} channel"
    elif platform == "telegram" and not TELEGRAM_CHAT.match(target):
        return "must be a Telegram chat id or @channelname"
    elif platform == "webhook" and not target.isdigit():
        return "must be the id of a registered webhook endpoint"
    elif platform == "email" and not EMAIL_ADDRESS.match(target):
        return "must be an email address"
    return ""


def origin_of(job: Job) -> DebateOrigin | None:
    """Return the origin recorded in ``job``'s metadata, None when there is none.

    Raises:
        InvalidJob: the recorded origin is malformed (e.g. an unknown platform).
    """
    stored = job.metadata.get(ORIGIN_KEY)
    return None if stored is None else DebateOrigin.from_value(stored)
