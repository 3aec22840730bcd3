"""Request bodies of the queue API: size limit (413), length required (411), JSON depth (400).

The site's ASGI entry point (``aragora_site.edge``) already refuses oversized and slow bodies and
gives chunked bodies their length; these checks hold under any server, WSGI ones included.
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than ``ARAGORA_API_MAX_BODY_BYTES``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class LengthRequired(exceptions.APIException):
    """A chunked body reached a server that cannot read it (WSGI): send a Content-Length."""

    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = "Send the body with a Content-Length header (chunked bodies are not read)."
    default_code = "length_required"


def too_large() -> PayloadTooLarge:
    """Return the 413 error naming the limit."""
    return PayloadTooLarge(f"Request body larger than {settings.ARAGORA_API_MAX_BODY_BYTES} bytes.")


def check_body(request: Request) -> None:
    """Refuse a body before anything reads it: by its declared length, or its missing length.

    Raises:
        PayloadTooLarge: Content-Length is over ``ARAGORA_API_MAX_BODY_BYTES``.
        LengthRequired: the body is chunked and the server gave no length.
    """
    meta = request.META
    declared = meta.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > settings.ARAGORA_API_MAX_BODY_BYTES:
        raise too_large()
    if not declared and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise LengthRequired()


def json_depth(value: Any) -> int:
    """Return how deeply arrays and objects nest in ``value`` (0 for a scalar).

    Level by level: only arrays and objects are kept for the next level, so a large body of
    flat jobs costs one pass over its values, with no bookkeeping per scalar.
    """
    depth, level = 0, [value]
    while level:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            break
        depth += 1
        level = []
        for container in containers:
            level.extend(container.values() if isinstance(container, dict) else container)
    return depth


class LimitedJSONParser(JSONParser):
    """Parse JSON bodies up to ``ARAGORA_API_MAX_BODY_BYTES`` and ``MAX_JSON_DEPTH`` levels."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        """Refuse bodies over the limit (413) and too deeply nested ones (400)."""
        body = stream.read(settings.ARAGORA_API_MAX_BODY_BYTES + 1)
        if len(body) > settings.ARAGORA_API_MAX_BODY_BYTES:
            raise too_large()
        too_deep = exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise too_deep
        return data


class CheckedBody:
    """View mixin: JSON bodies through ``LimitedJSONParser``, checked by ``check_body`` first."""

    parser_classes = (LimitedJSONParser,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Check the body's length before anything reads it."""
        if request.method in ("POST", "PUT", "PATCH"):
            check_body(request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
