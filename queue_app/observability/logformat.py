"""Log formatters: JSON lines (default) or plain text, switched by ``ARAGORA_LOG_FORMAT``.

Each JSON line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, then
the job context a caller passed in ``extra`` (``event``, ``job_id``, ``queue``, ``job_type``,
``attempt``, ``worker_id``, ...), and ``trace_id``/``span_id`` of the job's or the current span.
Fields whose names look secret are redacted, and passwords in URLs are masked.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

#: Attributes every LogRecord has: whatever else it carries came from ``extra``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: Job context shown first (in this order) by the text format.
CONTEXT_FIELDS = ("event", "job_id", "queue", "job_type", "attempt", "worker_id")
_SECRET_NAME = re.compile(r"secret|token|passw|authorization|signature|api_?key|cookie", re.I)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@/\s]+@")
REDACTED = "[redacted]"


def mask_secrets(text: str) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@`` URL masked."""
    return _URL_PASSWORD.sub(r"\1" + REDACTED + "@", text) if "@" in text else text


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the ``extra`` fields of ``record`` plus trace ids, secrets redacted."""
    fields = {}
    for name, value in record.__dict__.items():
        if name in _RECORD_FIELDS or name.startswith("_"):
            continue
        fields[name] = REDACTED if _SECRET_NAME.search(name) else value
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        current = format(context.trace_id, "032x")
        if fields.get("trace_id") in (None, "", current):
            fields["trace_id"] = current
            fields.setdefault("span_id", format(context.span_id, "016x"))
    return fields


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of ``record``."""
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        document.update(record_fields(record))
        if record.exc_info:
            document["exception"] = mask_secrets(self.formatException(record.exc_info))
        elif record.exc_text:
            document["exception"] = mask_secrets(record.exc_text)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Format records as ``time LEVEL logger message key=value ...`` for terminals."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Append the job context and trace id to the plain line."""
        line = mask_secrets(super().formatMessage(record))
        fields = record_fields(record)
        shown = [name for name in CONTEXT_FIELDS if fields.get(name) is not None]
        shown += [name for name in ("trace_id",) if fields.get(name)]
        extra = " ".join(f"{name}={fields[name]}" for name in shown)
        return f"{line} {extra}" if extra else line
