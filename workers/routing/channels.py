"""Send a result to one platform and say how it went (a ``Reply``).

- Slack, Discord and Teams: POST JSON to the origin's incoming-webhook URL, through the webhook
  kind's SSRF guard (``workers.webhooks.resolve_target``: the host is resolved once, private
  addresses refused unless allowed, the request pinned to the vetted address), with a circuit
  breaker per host (``workers.webhooks.CircuitState``, kept in this process).
- Telegram: ``POST {base}/bot<token>/sendMessage``; the token never appears in logs or errors.
- webhook: a ``debate.completed`` job for the registered endpoint on the ``webhooks`` queue, so
  the signed delivery path (signature, endpoint circuit, delivery log) does the rest.
- email: through the ``RouteStore`` (Django's email backend).

2xx is ``delivered``; 408, 429, 5xx and transport errors ``retry``; other statuses ``failed``.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from queue_app.queue import ConfigError, Job, JobQueue
from workers.webhooks import (
    WEBHOOKS_QUEUE,
    CircuitState,
    TargetRefused,
    classify,
    create_webhook_job,
    resolve_target,
)

from ..runtime import Defer
from .config import RoutingConfig
from .store import EmailMessage, RouteStore

#: Event type of results handed to registered webhook endpoints.
DEBATE_COMPLETED_EVENT = "debate.completed"
EXCERPT_CHARS = 500
USER_AGENT = "Aragora-Routing/1"
_WEBHOOK_NAMESPACE = uuid.UUID("7d4e2a90-51c3-4b8f-8e0a-3f6b9c2d1e57")


@dataclass(frozen=True, slots=True)
class Reply:
    """How one attempt went: an outcome of ``ROUTE_OUTCOMES``, a status, a short excerpt."""

    outcome: str
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""


def reply_of(response: httpx.Response) -> Reply:
    """Classify an HTTP response."""
    outcome = classify(response.status_code)
    error = "" if outcome == "delivered" else f"HTTP {response.status_code}"
    return Reply(outcome, response.status_code, response.text[:EXCERPT_CHARS], error)


class HttpSender:
    """POSTs JSON: to public incoming webhooks (guarded, per-host circuits) or to Telegram."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        # No redirects (a 3xx could point anywhere) and no proxies from the environment.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        self.circuits: dict[str, CircuitState] = {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def post_webhook(self, target: str, body: dict[str, Any]) -> Reply:
        """POST ``body`` to an incoming-webhook URL of the origin, guarded and circuit-broken."""
        try:
            url = httpx.URL(target)
            addresses = await resolve_target(url, self.config.allow_private)
        except (TargetRefused, httpx.InvalidURL):
            return Reply("failed", error="target is not a public http(s) URL")
        except OSError:
            return Reply("retry", error="target host does not resolve")
        host = url.host
        now = time.time()
        circuit = self.circuits.get(host, CircuitState())
        if not circuit.admits(now):
            raise Defer((circuit.next_attempt_at or now) - now, f"circuit of {host} is open")
        lease = self.config.read_timeout + self.config.connect_timeout
        self.circuits[host] = circuit.admitting(now, lease)
        pinned = url.copy_with(host=str(addresses[0]))
        headers = {"Host": url.netloc.decode("ascii")}
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        reply = await self._send(pinned, body, headers, extensions)
        current = self.circuits[host]
        if reply.outcome == "retry":
            self.circuits[host] = current.after_failure(time.time(), self.config.circuit)
        else:
            self.circuits[host] = current.after_success()
        return reply

    async def post_telegram(self, body: dict[str, Any]) -> Reply:
        """Call the Bot API's ``sendMessage`` on the configured server."""
        if not self.config.telegram_bot_token:
            raise ConfigError("telegram routing needs ARAGORA_TELEGRAM_BOT_TOKEN")
        base = self.config.telegram_base_url.rstrip("/")
        url = httpx.URL(f"{base}/bot{self.config.telegram_bot_token}/sendMessage")
        return await self._send(url, body, {}, {})

    async def _send(
        self,
        url: httpx.URL,
        body: dict[str, Any],
        headers: dict[str, str],
        extensions: dict[str, Any],
    ) -> Reply:
        request = self._client.build_request(
            "POST", url, json=body, headers=headers, extensions=extensions
        )
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as error:  # its text may hold the URL: name the type only
            return Reply("retry", error=type(error).__name__)
        return reply_of(response)


async def hand_to_webhooks(
    queue: JobQueue, job: Job, endpoint_id: str, data: dict[str, Any]
) -> Reply:
    """Enqueue the signed delivery of ``debate.completed`` to a registered endpoint."""
    delivery_id = str(uuid.uuid5(_WEBHOOK_NAMESPACE, job.id))
    webhook_job = create_webhook_job(
        endpoint_id,
        DEBATE_COMPLETED_EVENT,
        data,
        delivery_id=delivery_id,
        metadata={k: job.metadata[k] for k in ("owner", "organization") if k in job.metadata},
    )
    webhook_job.id = delivery_id  # one webhook job per routing job, however often it runs
    await queue.enqueue(webhook_job, 0, WEBHOOKS_QUEUE)
    return Reply("delivered", excerpt=f"webhook job {delivery_id}")


async def send_email(store: RouteStore | None, message: EmailMessage) -> Reply:
    """Send the email through the store; SMTP 5xx and refused addresses fail for good."""
    if store is None:
        raise ConfigError("email routing needs a RouteStore (queue_worker provides Django's)")
    try:
        await store.send_email(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
        return Reply("failed", error=f"SMTP refused: {type(error).__name__}")
    except smtplib.SMTPResponseException as error:
        outcome = "failed" if error.smtp_code >= 500 else "retry"
        return Reply(outcome, error.smtp_code, error=f"SMTP {error.smtp_code}")
    except (smtplib.SMTPException, OSError) as error:
        return Reply("retry", error=f"SMTP: {type(error).__name__}")
    return Reply("delivered", 250)
