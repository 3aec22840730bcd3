"""Content negotiation of the API: remembered per Accept header, answering as DRF's own does."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient

from queue_app.api.negotiation import RememberedNegotiation
from tests.api_support import JOBS, debate, make_user, token_client

ACCEPT_HEADERS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "*/*; q=0.5, application/json",
]


def _request(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(RequestFactory().get(f"/api/queue/jobs/{query}", **headers))


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
def test_negotiation_answers_as_drf_every_time(accept: str | None, query: str) -> None:
    drf, remembered = DefaultContentNegotiation(), RememberedNegotiation()
    for _ in range(3):  # the first answer is negotiated, the next ones looked up
        renderers = [JSONRenderer(), BrowsableAPIRenderer()]
        assert _answer(remembered, accept, query, renderers) == _answer(
            drf, accept, query, renderers
        )


def _answer(
    negotiation: DefaultContentNegotiation, accept: str | None, query: str, renderers: list[Any]
) -> tuple[int, str] | str:
    """Return the index of the chosen renderer and the media type, or the refusal."""
    try:
        renderer, media_type = negotiation.select_renderer(_request(accept, query), renderers)
    except NotAcceptable as refused:
        return str(refused.detail)
    return renderers.index(renderer), media_type


def test_negotiation_refuses_as_drf_every_time() -> None:
    for _ in range(3):
        with pytest.raises(NotAcceptable):
            RememberedNegotiation().select_renderer(_request("image/png"), [JSONRenderer()])


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_url")
def test_api_answers_json_html_or_406_by_accept_header() -> None:
    api: APIClient = token_client(make_user("alice", "acme"))
    for _ in range(2):
        assert api.post(JOBS, debate(), format="json").headers["Content-Type"] == (
            "application/json"
        )
        browsable = api.get(JOBS, HTTP_ACCEPT="text/html")
        assert browsable.headers["Content-Type"] == "text/html; charset=utf-8"
        indented = api.get(JOBS, HTTP_ACCEPT="application/json; indent=2")
        assert indented.content.startswith(b'{\n  "count"')
        refused = api.get(JOBS, HTTP_ACCEPT="image/png")
        assert refused.status_code == 406
