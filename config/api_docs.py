"""The API's docs page (Swagger UI) under the strict nonce CSP, with no CDN.

Swagger UI's assets come from the `drf-spectacular-sidecar` package as our own static files. The page
uses drf-spectacular's "split" view: its start-up script is a second same-origin request
(`?script`) instead of an inline <script>, so `script-src 'self' 'nonce-…'` holds without
'unsafe-inline'. The page's one inline <style> carries the request's CSP nonce.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse
from django.template import engines
from drf_spectacular.plumbing import set_query_parameters
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

_PAGE = engines["django"].from_string(
    """{% extends "drf_spectacular/swagger_ui.html" %}
{% block head %}
<title>{{ title }}</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{{ favicon_href }}">
<link rel="stylesheet" href="{{ swagger_ui_css }}">
<style nonce="{{ request.csp_nonce }}">
  html { box-sizing: border-box; overflow-y: scroll; }
  *, *:after, *:before { box-sizing: inherit; }
  body { background: #fafafa; margin: 0; }
</style>
{% endblock head %}
"""
)


class ApiDocsView(SpectacularSwaggerSplitView):
    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response | HttpResponse:
        if request.GET.get("script") is not None:
            return super().get(request, *args, **kwargs)
        context = {
            "title": self.title,
            "swagger_ui_css": self._swagger_ui_resource("swagger-ui.css"),
            "swagger_ui_bundle": self._swagger_ui_resource("swagger-ui-bundle.js"),
            "swagger_ui_standalone": self._swagger_ui_resource("swagger-ui-standalone-preset.js"),
            "favicon_href": self._swagger_ui_favicon(),
            "script_url": set_query_parameters(url=request.path, script=""),
        }
        return HttpResponse(_PAGE.render(context, request))


def api_not_found(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any /api/ path that matches no endpoint (including a malformed id): the API's error shape, not an
    HTML page."""
    return JsonResponse({"error": {"code": "not_found", "message": "Not found."}}, status=404)
