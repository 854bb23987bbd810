"""Everything under /api/: version 1 of the REST API, its OpenAPI schema and the docs page.

Included by config/urls.py as `path("api/", include("config.api_urls"))`; URL names are in the
`api` namespace (`api:me`, `api:member-detail`, `api:schema`, ...).
"""

from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from config.api_docs import ApiDocsView, api_not_found
from tenants import api as tenants_api

app_name = "api"

v1: list[URLPattern | URLResolver] = [
    path("", include("accounts.api_urls")),
    path("", include("amazon.api_urls")),
    path("repricing/", include("repricing.api_urls")),
    path("audit-events", tenants_api.AuditEventListView.as_view(), name="audit-event-list"),
    path("job-runs", tenants_api.JobRunListView.as_view(), name="job-run-list"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    path("docs", RedirectView.as_view(pattern_name="api:docs", permanent=True)),
    path("", RedirectView.as_view(pattern_name="api:docs")),
    re_path(r"", api_not_found),  # last: unknown /api/ paths answer 404 in the error shape
]
