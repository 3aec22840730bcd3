"""The site's ASGI handler: Django's, with the middleware and the view run as one sync call.

The site's middleware (Django's own, WhiteNoise, django-prometheus) and its views (DRF) are
sync. Django's ``ASGIHandler`` runs a sync middleware from the event loop by handing each of
its ``process_*`` methods to a thread and back, about sixteen thread switches per request,
which cost more CPU than the view itself. This handler builds the middleware chain as WSGI
does and runs it, with the view, in one call on the request's thread; the rest (reading the
body, the request signals, streaming the response, noticing disconnects) stays Django's.
"""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncStackASGIHandler(ASGIHandler):
    """Serve ASGI requests through the sync middleware chain, one thread switch per request."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """Run the middleware chain and the view on the request's thread (``get_response``)."""
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_sync_stack_application() -> SyncStackASGIHandler:
    """Set Django up and return the site's ASGI handler (as ``get_asgi_application`` does)."""
    django.setup(set_prefix=False)
    return SyncStackASGIHandler()
