"""URLs: landing page, admin and queue dashboard, health, metrics, API docs and the queue API."""

from __future__ import annotations

from importlib.util import find_spec

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from aragora_site.views import landing
from queue_app.observability.health import healthz, readyz
from queue_app.observability.metrics_access import metrics


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer 404 as JSON under /api/ (as the API's own 404s), as Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found


def _module_exists(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


urlpatterns = [
    path("", landing, name="landing"),
    # The queue dashboard (staff only), before the admin's catch-all.
    path("admin/queue/", include("queue_app.admin.dashboard")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI and ReDoc load their assets from drf-spectacular-sidecar's static files.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # django-prometheus's exposition, behind ARAGORA_METRICS_TOKEN / ARAGORA_METRICS_ALLOW.
    path("metrics", metrics, name="prometheus-django-metrics"),
]

if _module_exists("queue_app.api.urls"):
    urlpatterns.append(path("api/queue/", include("queue_app.api.urls")))
