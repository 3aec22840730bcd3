"""What the routing worker needs from its host (Django or not): the ``RouteStore`` Protocol.

``RouteStore`` keeps the delivery log (one ``RouteAttempt`` per attempt, the target shown
without secrets) and sends email through the host's mail setup.
``queue_app.stores.routes.DjangoRouteStore`` implements it over the ORM and Django's email
backend (``EMAIL_*`` settings, SMTP by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

#: Outcomes of one routing attempt (the ``outcome`` label of the route deliveries metric).
ROUTE_OUTCOMES = ("delivered", "retry", "failed", "circuit_open")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteAttempt:
    """One attempt to deliver one debate result to one platform, as recorded."""

    job_id: str
    debate_id: str
    platform: str
    #: The target as shown to people: the host of a webhook URL (its path holds a token),
    #: a chat id, an endpoint id or an email address.
    target: str
    attempt: int
    #: One of ``ROUTE_OUTCOMES``.
    outcome: str
    status_code: int | None = None
    duration_seconds: float | None = None
    error: str = ""
    response_excerpt: str = ""
    #: Who enqueued the debate (user pk as text) and for which organization.
    owner: str = ""
    organization: str = ""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailMessage:
    """One email of a debate result."""

    to: str
    subject: str
    text: str
    html: str


class RouteStore(Protocol):
    """The routing delivery log and mail, as the worker needs them."""

    async def delivered(self, job_id: str) -> bool:
        """Tell whether routing job ``job_id`` already delivered (a rerun must not repeat it)."""
        ...

    async def record_delivery(self, attempt: RouteAttempt) -> None:
        """Record ``attempt`` in the delivery log."""
        ...

    async def send_email(self, message: EmailMessage) -> None:
        """Send ``message`` (``smtplib`` errors and ``OSError`` propagate)."""
        ...
