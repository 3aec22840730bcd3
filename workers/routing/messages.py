"""A debate's result as each platform wants it: question, answer, consensus, confidence, link.

Pure functions of a ``RouteMessage``: Slack blocks, a Discord embed, a Teams Adaptive Card, a
Telegram HTML message, an email (text and HTML) and the ``debate.completed`` webhook data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queue_app.queue import Job

from .store import EmailMessage

#: Longest answer put in a message (platforms cap message sizes: Telegram 4096, Slack 3000).
MAX_ANSWER_CHARS = 2500
MAX_QUESTION_CHARS = 500
TITLE = "Aragora debate result"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteMessage:
    """What every platform is told about a finished debate."""

    debate_id: str
    question: str
    answer: str
    consensus_reached: bool | None
    confidence: float | None
    job_url: str

    @classmethod
    def of(cls, debate: Job, result: Mapping[str, Any], public_url: str) -> RouteMessage:
        """Build the message of ``debate`` and its ``result`` (a ``DebateResult`` dict)."""
        confidence = result.get("confidence")
        reached = result.get("consensus_reached")
        return cls(
            debate_id=debate.id,
            question=_clip(str(debate.payload.get("question") or ""), MAX_QUESTION_CHARS),
            answer=_clip(str(result.get("final_answer") or "(no answer)"), MAX_ANSWER_CHARS),
            consensus_reached=reached if isinstance(reached, bool) else None,
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
            job_url=f"{public_url.rstrip('/')}/api/queue/jobs/{debate.id}/",
        )

    @property
    def consensus(self) -> str:
        """Return ``Consensus reached``, ``No consensus`` or ``Consensus unknown``."""
        if self.consensus_reached is None:
            return "Consensus unknown"
        return "Consensus reached" if self.consensus_reached else "No consensus"

    @property
    def confidence_text(self) -> str:
        """Return the confidence as a percentage, or ``n/a``."""
        return "n/a" if self.confidence is None else f"{self.confidence:.0%}"

    def plain(self) -> str:
        """Return the message as plain text."""
        return (
            f"{TITLE}\n\nQuestion: {self.question}\n\nAnswer: {self.answer}\n\n"
            f"{self.consensus} (confidence {self.confidence_text})\n{self.job_url}\n"
        )


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: RouteMessage) -> dict[str, Any]:
    """Return a Slack incoming-webhook body (``text`` fallback and blocks)."""
    fields = [
        {"type": "mrkdwn", "text": f"*{message.consensus}*"},
        {"type": "mrkdwn", "text": f"*Confidence:* {message.confidence_text}"},
    ]
    return {
        "text": f"{TITLE}: {_slack_escape(message.question)}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": TITLE}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Question:* {_slack_escape(message.question)}",
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Answer:* {_slack_escape(message.answer)}"},
            },
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{message.job_url}|View the job>"}],
            },
        ],
    }


def discord_body(message: RouteMessage) -> dict[str, Any]:
    """Return a Discord webhook body with one embed."""
    color = 0x2EB67D if message.consensus_reached else 0xE01E5A
    return {
        "content": TITLE,
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": _clip(message.question, 256),
                "description": message.answer,
                "url": message.job_url,
                "color": color,
                "fields": [
                    {"name": "Consensus", "value": message.consensus, "inline": True},
                    {"name": "Confidence", "value": message.confidence_text, "inline": True},
                ],
            }
        ],
    }


def teams_body(message: RouteMessage) -> dict[str, Any]:
    """Return a Teams incoming-webhook (or Workflows) body carrying an Adaptive Card."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": TITLE, "weight": "Bolder", "size": "Medium"},
            {"type": "TextBlock", "text": message.question, "wrap": True, "isSubtle": True},
            {"type": "TextBlock", "text": message.answer, "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Consensus", "value": message.consensus},
                    {"title": "Confidence", "value": message.confidence_text},
                ],
            },
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "View the job", "url": message.job_url}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def telegram_body(message: RouteMessage, chat_id: str) -> dict[str, Any]:
    """Return a Bot API ``sendMessage`` body (HTML parse mode)."""
    text = (
        f"<b>{TITLE}</b>\n\n<b>Question:</b> {html.escape(message.question)}\n\n"
        f"<b>Answer:</b> {html.escape(message.answer)}\n\n"
        f"{message.consensus} (confidence {message.confidence_text})\n"
        f'<a href="{html.escape(message.job_url)}">View the job</a>'
    )
    return {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def email_message(message: RouteMessage, recipient: str) -> EmailMessage:
    """Return the email of the result to ``recipient`` (text and HTML)."""
    esc = html.escape
    body = (
        f"<h2>{TITLE}</h2><p><b>Question:</b> {esc(message.question)}</p>"
        f"<p><b>Answer:</b> {esc(message.answer)}</p>"
        f"<p>{message.consensus} (confidence {message.confidence_text})</p>"
        f'<p><a href="{esc(message.job_url)}">View the job</a></p>'
    )
    return EmailMessage(
        to=recipient,
        subject=_clip(f"{TITLE}: {message.question}", 150).replace("\n", " "),
        text=message.plain(),
        html=body,
    )


def webhook_data(message: RouteMessage, result: Mapping[str, Any]) -> dict[str, Any]:
    """Return the data of the ``debate.completed`` event sent to a webhook endpoint."""
    return {
        "debate_id": message.debate_id,
        "question": message.question,
        "result": dict(result),
        "job_url": message.job_url,
    }
