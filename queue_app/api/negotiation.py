"""Content negotiation of the API: DRF's, remembered per ``Accept`` header and renderers.

DRF parses the ``Accept`` header and matches it against each renderer on every request, though
clients send the same few headers (``*/*``, ``application/json``) again and again. The answer
depends only on the header and on the renderers' media types, so it is kept for each pair; a
format asked in the URL (``?format=``, a suffix) and a refusal (406) take DRF's own path.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

#: Most (Accept header, renderers) answers kept; further ones are negotiated each time.
MAX_REMEMBERED = 256
#: Answers of DRF's negotiation: index of the renderer and the media type to answer with.
_answers: dict[tuple[str | None, tuple[type, ...]], tuple[int, str]] = {}


class RememberedNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, whose answer to a known Accept header is looked up."""

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: Any = None
    ) -> tuple[Any, str]:
        """Return DRF's (renderer, media type) for the request's ``Accept`` header."""
        if format_suffix or self.settings.URL_FORMAT_OVERRIDE in request.query_params:
            return super().select_renderer(request, renderers, format_suffix)
        key = (request.headers.get("accept"), tuple(type(renderer) for renderer in renderers))
        answer = _answers.get(key)
        if answer is not None:
            return renderers[answer[0]], answer[1]
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)
        if len(_answers) < MAX_REMEMBERED:
            _answers[key] = (list(renderers).index(renderer), media_type)
        return renderer, media_type
