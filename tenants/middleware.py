"""Opens the request's transaction and sets the tenant *inside* it.

Django middleware runs outside ATOMIC_REQUESTS, so a transaction-local setting made there would be
gone (or, worse, in a different transaction) by the time the view runs. This middleware therefore
owns the request transaction: it opens it, sets `app.tenant_id` in it from the session's chosen
tenant, runs the view (and renders its response) inside it, and rolls back on a server error.
API requests authenticate inside the view (DRF); accounts.authentication activates their tenant in
this same transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from tenants import context
from tenants.audit import RequestInfo, request_info

SESSION_KEY = "tenant_id"
#: Probes answer without a request transaction: /healthz must not depend on the database at all, and
#: /readyz checks the database itself (and must report it down, not fail with a 500).
NO_TRANSACTION_PATHS = frozenset({"/healthz", "/readyz"})


def client_ip(request: HttpRequest) -> str | None:
    # Behind the production proxy, SECURE_PROXY_SSL_HEADER is trusted; REMOTE_ADDR is set by gunicorn.
    return request.META.get("REMOTE_ADDR") or None


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from accounts.selectors import membership_for_session

        if request.path in NO_TRANSACTION_PATHS:
            return self.get_response(request)

        info_token = request_info.set(
            RequestInfo(ip_address=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", ""))
        )
        tenant_token = context._current.set(None)
        try:
            with transaction.atomic():
                membership = membership_for_session(request)
                request.membership = membership  # type: ignore[attr-defined]
                request.tenant = membership.tenant if membership else None  # type: ignore[attr-defined]
                if membership is not None:
                    context.activate(membership.tenant)
                response = self.get_response(request)
                render = getattr(response, "render", None)
                if render is not None and not getattr(response, "is_rendered", True):
                    response = render()
                if response.status_code >= 500:
                    transaction.set_rollback(True)
            return response
        finally:
            context._current.reset(tenant_token)
            request_info.reset(info_token)
