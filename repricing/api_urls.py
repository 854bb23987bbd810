"""/api/v1/repricing/... routes (included by config/api_urls.py; URL names in the `api` namespace,
prefixed `repricing-`)."""

from django.urls import URLPattern, path  # noqa: F401

urlpatterns: list[URLPattern] = []
