"""Django's authentication and messages middleware, skipped where they do nothing.

A request to the queue API that carries ``Authorization: Token ...`` is authenticated by DRF's
token authentication, which either finds the user or refuses the request: DRF never uses
Django's ``request.user`` for it (it sets its own), and the API's JSON answers add no messages.
For those requests these middleware would only build objects that nothing reads. Every other
request goes through them: session-authenticated API calls (whose CSRF check DRF's
``SessionAuthentication`` makes), the admin and the HTML pages, and a token request that asks
for HTML (the browsable API, whose page shows the user and carries a CSRF token). The session
and CSRF middleware run for every request: ``check --deploy`` looks for them by name.

Each class here is Django's, so that the admin's system checks (admin.E408, E409) find them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.http import HttpRequest, HttpResponseBase

#: Requests under this path with a token skip the middleware of this module.
TOKEN_API_PREFIX = "/api/queue/"


def is_token_api_request(request: HttpRequest) -> bool:
    """Tell whether DRF will authenticate ``request`` by its token, for a JSON answer."""
    known: bool | None = getattr(request, "_aragora_token_api", None)
    if known is None:
        known = _token_api(request)
        request._aragora_token_api = known  # type: ignore[attr-defined]
    return known


def _token_api(request: HttpRequest) -> bool:
    if not request.path_info.startswith(TOKEN_API_PREFIX):
        return False
    meta = request.META
    if meta.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower() != "token":
        return False
    return "html" not in meta.get("HTTP_ACCEPT", "") and "format=" not in meta.get(
        "QUERY_STRING", ""
    )


class _SkippedForTokenAPI:
    """Mixin of a Django middleware: token API requests go straight to the next handler."""

    get_response: Callable[[HttpRequest], HttpResponseBase]

    def __call__(self, request: HttpRequest) -> Any:
        """Pass a token API request on untouched; run the middleware for any other."""
        if is_token_api_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class BrowserAuthenticationMiddleware(_SkippedForTokenAPI, AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except for token API requests."""


class BrowserMessageMiddleware(_SkippedForTokenAPI, MessageMiddleware):
    """Django's MessageMiddleware, except for token API requests."""
