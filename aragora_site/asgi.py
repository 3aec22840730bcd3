"""ASGI entry point, served by granian (``bin/serve``); request bodies pass ``BodyEdge`` first."""

from __future__ import annotations

import os
import sys

from django.conf import settings

from aragora_site.edge import BodyEdge, BodyLimits
from aragora_site.handler import get_sync_stack_application
from queue_app.observability.telemetry import setup_telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aragora_site.settings")

# Before the handler loads the middleware, which the Django instrumentation extends.
setup_telemetry("aragora-web")
django_application = get_sync_stack_application()
application = BodyEdge(
    django_application,
    BodyLimits(
        api_prefix="/api/",
        api_max_bytes=settings.ARAGORA_API_MAX_BODY_BYTES,
        site_max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or sys.maxsize,
        timeout=settings.ARAGORA_HTTP_BODY_TIMEOUT,
    ),
)
