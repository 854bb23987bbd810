"""What every dashboard page checks before it runs: `@dashboard_page(...)`.

Use it on every server-rendered page that shows or changes tenant data (other apps' pages too):

    @dashboard_page(Permission.CHANGE_AUTOMATION)
    def repricing_rules(request): ...

In order it: sends anonymous visitors to the login page; sends users who still owe a two-factor step
to the MFA challenge or setup (accounts.mfa.mfa_requirement); shows "no company yet" to users without a
membership (unless `tenant_required=False`); answers 403 when the member's role lacks `permission`.
Objects are still looked up by the view filtered by `request.tenant` (404 across tenants).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import mfa
from accounts.roles import Permission, role_allows

View = Callable[..., HttpResponse]


def forbidden(
    request: HttpRequest, message: str = "Your role in this company does not allow this."
) -> HttpResponse:
    return render(request, "403.html", {"message": message}, status=403)


def _redirect_with_next(request: HttpRequest, url_name: str) -> HttpResponse:
    return redirect(f"{reverse(url_name)}?{urlencode({'next': request.get_full_path()})}")


def access_refusal(
    request: HttpRequest, *, permission: Permission | None = None, tenant_required: bool = True
) -> HttpResponse | None:
    """The response that refuses this request, or None when the page may run."""
    if not request.user.is_authenticated:
        return _redirect_with_next(request, "accounts:login")
    step = mfa.mfa_requirement(request)
    if step == "challenge":
        return _redirect_with_next(request, "accounts:mfa_challenge")
    if step == "setup":
        return _redirect_with_next(request, "accounts:mfa_setup")
    membership = getattr(request, "membership", None)
    if membership is None:
        if tenant_required:
            return render(request, "accounts/no_tenant.html", status=200)
        return None
    if permission is not None and not role_allows(membership.role, permission):
        return forbidden(request)
    return None


def dashboard_page(
    permission: Permission | None = None, *, tenant_required: bool = True
) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = access_refusal(request, permission=permission, tenant_required=tenant_required)
            if refusal is not None:
                return refusal
            request.dashboard_page = True  # type: ignore[attr-defined]  # base.html: fetch a bearer token
            response = view(request, *args, **kwargs)
            # Pages show tenant data: never keep them in a shared or back/forward cache.
            response.setdefault("Cache-Control", "no-store")
            return response

        return wrapper

    return decorator
