"""WSGI entry point for WSGI servers; the site is served through ``aragora_site.asgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from queue_app.observability.telemetry import setup_telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aragora_site.settings")

# Before the handler loads the middleware, which the Django instrumentation extends.
setup_telemetry("aragora-web")
application = get_wsgi_application()
