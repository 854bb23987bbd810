"""Dashboard pages for repricing under /repricing/ (included by config/urls.py; namespace `repricing`)."""

from django.urls import URLPattern, path  # noqa: F401

app_name = "repricing"

urlpatterns: list[URLPattern] = []
