"""Settings of the routing worker kind (``aragora_site.settings`` fills them from env)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.webhooks import CircuitPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingConfig:
    """Where results link to, how platforms are reached, how failures are retried."""

    #: Base URL of this site; messages link to ``<public_url>/api/queue/jobs/<debate id>/``.
    public_url: str = "http://localhost:8000"
    #: Telegram Bot API server (a local Bot API server or a test server can replace it).
    telegram_base_url: str = "https://api.telegram.org"
    telegram_bot_token: str = field(default="", repr=False)
    #: Deliver to private, loopback and link-local addresses (development and tests only).
    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    #: First retry delay in seconds; each later retry waits twice as long (with jitter).
    retry_delay_seconds: float = 30.0
    #: When a platform host's circuit opens and how long it stays open.
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
