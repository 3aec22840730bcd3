"""The landing page at ``/``: the site's entry points (admin, dashboard, API docs, metrics)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

#: Links of the landing page: URL name, label, what it is.
LINKS = (
    ("admin:index", "Admin", "jobs, failures, webhook endpoints and deliveries (staff)"),
    ("queue-dashboard", "Queue dashboard", "depths, latency, workers and throughput, live (staff)"),
    ("api-docs", "API docs", "Swagger UI of the REST API under /api/queue/"),
    ("api-redoc", "API reference", "the same schema in ReDoc"),
    ("api-schema", "OpenAPI schema", "YAML, for code generators"),
    ("prometheus-django-metrics", "Metrics", "Prometheus metrics of the site and the queues"),
    ("healthz", "Health", "liveness probe"),
    ("readyz", "Readiness", "Redis, database and migrations"),
)


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    """Render the landing page: a list of the site's entry points."""
    links = [{"url": reverse(name), "label": label, "about": about} for name, label, about in LINKS]
    return render(request, "site/landing.html", {"links": links})
