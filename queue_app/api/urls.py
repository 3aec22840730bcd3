"""URLs of the queue API, mounted at /api/queue/ (the schema is at /api/schema/)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from queue_app.api import bulk, views

app_name = "queue-api"

router = SimpleRouter()
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/bulk/", bulk.JobBulkView.as_view(), name="job-bulk"),
    path("jobs/<str:job_id>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/retry/", views.JobRetryView.as_view(), name="job-retry"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("workers/", views.WorkersView.as_view(), name="workers"),
    *router.urls,
]
