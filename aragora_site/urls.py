"""URLs: admin and queue dashboard, health, metrics, the OpenAPI schema and the queue API."""

from __future__ import annotations

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from queue_app.observability.health import healthz, readyz


def _module_exists(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


urlpatterns = [
    # The queue dashboard (staff only), before the admin's catch-all.
    path("admin/queue/", include("queue_app.admin.dashboard")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # django_prometheus.urls serves /metrics.
    path("", include("django_prometheus.urls")),
]

if _module_exists("queue_app.api.urls"):
    urlpatterns.append(path("api/queue/", include("queue_app.api.urls")))
