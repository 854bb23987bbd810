"""Dashboard pages for seller connections: list, connect (Seller Central consent or own app), the consent
callback, detail with the quota state, disconnect; and the synchronised data: listings, orders.

Views parse input, rely on `@dashboard_page` for sign-in/MFA/membership/role, look connections up through
`amazon.selectors` (tenant-filtered, guardian grants honoured: anything else is 404) and call one
service, which checks the role again. Service refusals become form errors or messages, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.pages import dashboard_page
from accounts.roles import Permission, role_allows
from amazon import selectors, seller_data, services
from amazon.forms import ConsentStartForm, ListingFilterForm, OrderFilterForm, OwnAppForm
from amazon.models import Order, Region, SellerConnection
from amazon.ratelimit import QuotaState

# The inline quota chart (server-rendered SVG, no script): geometry in viewBox units.
CHART_WIDTH = 640
CHART_LABEL_WIDTH = 230
CHART_BAR_WIDTH = 300
CHART_ROW_HEIGHT = 30


def _actor(request: HttpRequest) -> tuple[User, str]:
    return request.user, request.membership.role  # type: ignore[attr-defined,return-value]


def with_consent_form(response: HttpResponse, consent_urls: Iterable[str] | None = None) -> HttpResponse:
    """For a page with a form posting to a consent start (Seller Central's by default, or the Ads consent
    pages' `consent_urls`), which redirects to Amazon: browsers hold a form's redirects to the CSP's
    form-action too, so this page allows the consent pages' origins."""
    urls = settings.SELLER_CENTRAL_CONSENT_URLS.values() if consent_urls is None else consent_urls
    origins = {
        f"{parts.scheme}://{parts.netloc}"
        for parts in map(urlsplit, urls)
        if parts.scheme in ("https", "http") and parts.netloc
    }
    response._csp_update = {"form-action": sorted(origins)}  # type: ignore[attr-defined]  # django-csp
    return response


def _connection(request: HttpRequest, public_id: UUID) -> SellerConnection:
    try:
        return selectors.seller_connection_get(
            tenant=request.tenant,  # type: ignore[attr-defined]
            public_id=public_id,
            user=request.user,  # type: ignore[arg-type]
        )
    except SellerConnection.DoesNotExist:
        raise Http404("No such connection.") from None


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def connection_list(request: HttpRequest) -> HttpResponse:
    _, role = _actor(request)
    connections = list(
        selectors.seller_connection_list(
            tenant=request.tenant,  # type: ignore[attr-defined]
            user=request.user,  # type: ignore[arg-type]
            include_disconnected=True,
        )
    )
    live = [c for c in connections if c.status != SellerConnection.Status.DISCONNECTED]
    disconnected = [c for c in connections if c.status == SellerConnection.Status.DISCONNECTED]
    return with_consent_form(
        render(
            request,
            "amazon/connections.html",
            {
                "connections": live,
                "disconnected": disconnected,
                "needs_attention": [
                    c for c in live if c.status == SellerConnection.Status.NEEDS_REAUTHORIZATION
                ],
                "can_connect": role_allows(role, Permission.CONNECT_AMAZON),
            },
        )
    )


@dashboard_page(Permission.CONNECT_AMAZON)
@require_http_methods(["GET", "POST"])
def connect(request: HttpRequest) -> HttpResponse:
    actor, role = _actor(request)
    prefill = {k: request.GET[k] for k in ("region", "selling_partner_id") if request.GET.get(k)}
    consent_form = ConsentStartForm(initial={"region": prefill.get("region", Region.NA)})
    own_app_form = OwnAppForm(request.POST or None, initial=prefill)
    status = 200
    if request.method == "POST":
        status = 400
        if own_app_form.is_valid():
            data = own_app_form.cleaned_data
            try:
                connection = services.seller_connection_create_own_app(
                    tenant=request.tenant,  # type: ignore[attr-defined]
                    actor=actor,
                    actor_role=role,
                    region=data["region"],
                    selling_partner_id=data["selling_partner_id"],
                    lwa_client_id=data["lwa_client_id"],
                    lwa_client_secret=data["lwa_client_secret"],
                    refresh_token=data["refresh_token"],
                    name=data["name"],
                )
            except services.AmazonConnectionError as error:
                own_app_form.add_error(None, error.message)
                status = error.status if error.status >= 400 else 400
            else:
                messages.success(request, f"Connected {connection.name or connection.selling_partner_id}.")
                return redirect("amazon:connection_detail", public_id=connection.public_id)
    return with_consent_form(
        render(
            request,
            "amazon/connect.html",
            {"consent_form": consent_form, "own_app_form": own_app_form},
            status=status,
        )
    )


@dashboard_page(Permission.CONNECT_AMAZON)
@require_POST
def consent_start(request: HttpRequest) -> HttpResponse:
    """Send the seller to Seller Central's consent page (a POST: it records that connecting started)."""
    actor, role = _actor(request)
    form = ConsentStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the region of your Seller Central account.")
        return redirect("amazon:connect")
    try:
        url = services.consent_url_create(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            region=form.cleaned_data["region"],
            redirect_uri=request.build_absolute_uri(reverse("amazon:consent_callback")),
        )
    except services.AmazonConnectionError as error:
        messages.error(request, error.message)
        return redirect("amazon:connect")
    return redirect(url)


@dashboard_page(Permission.CONNECT_AMAZON)
@require_GET
def consent_callback_view(request: HttpRequest) -> HttpResponse:
    """Where Seller Central sends the seller back: `?state=…&spapi_oauth_code=…&selling_partner_id=…`
    (a GET, as Amazon sends it; the single-use signed state makes it safe)."""
    actor, role = _actor(request)
    if request.GET.get("error"):
        return _callback_failed(request, "Amazon reports that the authorisation was not given.")
    try:
        connection = services.consent_callback(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            state=request.GET.get("state", ""),
            spapi_oauth_code=request.GET.get("spapi_oauth_code", ""),
            selling_partner_id=request.GET.get("selling_partner_id", ""),
        )
    except services.AmazonConnectionError as error:
        return _callback_failed(request, error.message, status=error.status)
    messages.success(request, f"Connected {connection.name or connection.selling_partner_id}.")
    return redirect("amazon:connection_detail", public_id=connection.public_id)


def _callback_failed(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(
        request,
        "amazon/callback_failed.html",
        {"message": message},
        status=status if status >= 400 else 400,
    )


@dataclass(frozen=True)
class ChartRow:
    operation: str
    y: int
    text_y: int
    bar_width: float
    label: str
    low: bool


def quota_chart(quota: QuotaState) -> dict[str, Any]:
    """Geometry of the quota bars: tokens left of the burst, per operation (none below zero)."""
    rows = []
    for index, operation in enumerate(quota.operations):
        share = max(0.0, min(1.0, operation.tokens / operation.burst)) if operation.burst else 0.0
        rows.append(
            ChartRow(
                operation=operation.operation,
                y=index * CHART_ROW_HEIGHT + 6,
                text_y=index * CHART_ROW_HEIGHT + 21,
                bar_width=round(share * CHART_BAR_WIDTH, 1),
                label=f"{max(operation.tokens, 0):g} of {operation.burst}"
                + (f" · {operation.throttled_recently} x 429" if operation.throttled_recently else ""),
                low=share < 0.2 or operation.throttled_recently > 0,
            )
        )
    return {
        "rows": rows,
        "width": CHART_WIDTH,
        "height": max(1, len(rows)) * CHART_ROW_HEIGHT + 6,
        "label_width": CHART_LABEL_WIDTH,
        "bar_x": CHART_LABEL_WIDTH,
        "bar_width": CHART_BAR_WIDTH,
        "value_x": CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 10,
    }


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def connection_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    _, role = _actor(request)
    connection = _connection(request, public_id)
    quota = selectors.seller_connection_quota(connection=connection)
    return with_consent_form(
        render(
            request,
            "amazon/connection_detail.html",
            {
                "connection": connection,
                "quota": quota,
                "chart": quota_chart(quota),
                "can_connect": role_allows(role, Permission.CONNECT_AMAZON),
                "retention_days": settings.AMAZON_DATA_RETENTION_DAYS,
            },
        )
    )


@dashboard_page(Permission.CONNECT_AMAZON)
@require_http_methods(["GET", "POST"])
def connection_disconnect_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """GET asks for confirmation; POST disconnects."""
    actor, role = _actor(request)
    connection = _connection(request, public_id)
    if request.method == "GET":
        return render(
            request,
            "amazon/disconnect.html",
            {"connection": connection, "retention_days": settings.AMAZON_DATA_RETENTION_DAYS},
        )
    try:
        done = services.seller_connection_disconnect(connection=connection, actor=actor, actor_role=role)
    except services.AmazonConnectionError as error:
        messages.error(request, error.message)
        return redirect("amazon:connection_detail", public_id=connection.public_id)
    purge = f" on {done.purge_after:%b %-d, %Y}" if done.purge_after else ""
    messages.success(
        request,
        f"Disconnected {done.name or done.selling_partner_id}. Its credentials are deleted and its Amazon "
        f"data will be purged{purge}.",
    )
    return redirect("amazon:connections")


# --- The seller's data: listings and orders -----------------------------------------------------------

DATA_PAGE_SIZE = 50


def _has_connections(request: HttpRequest) -> bool:
    return selectors.seller_connection_list(
        tenant=request.tenant,  # type: ignore[attr-defined]
        user=request.user,  # type: ignore[arg-type]
    ).exists()


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def listing_list(request: HttpRequest) -> HttpResponse:
    form = ListingFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    listings = seller_data.listing_list(
        tenant=request.tenant,  # type: ignore[attr-defined]
        user=request.user,  # type: ignore[arg-type]
        q=filters.get("q", ""),
        status=filters.get("status", ""),
    )
    if form.is_bound and not form.is_valid():
        listings = listings.none()
    page = Paginator(listings, DATA_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "amazon/listings.html",
        {
            "form": form,
            "page": page,
            "filtered": bool(filters.get("q") or filters.get("status")),
            "has_connections": bool(page.object_list) or _has_connections(request),
        },
    )


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    _, role = _actor(request)
    form = OrderFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    orders = seller_data.order_list(
        tenant=request.tenant,  # type: ignore[attr-defined]
        user=request.user,  # type: ignore[arg-type]
        status=filters.get("status", ""),
    )
    if form.is_bound and not form.is_valid():
        orders = orders.none()
    page = Paginator(orders, DATA_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "amazon/orders.html",
        {
            "form": form,
            "page": page,
            "filtered": bool(filters.get("status")),
            "see_money": role_allows(role, Permission.SEE_MONEY),
            "has_connections": bool(page.object_list) or _has_connections(request),
        },
    )


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def order_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    _, role = _actor(request)
    try:
        order = seller_data.order_get(
            tenant=request.tenant,  # type: ignore[attr-defined]
            public_id=public_id,
            user=request.user,  # type: ignore[arg-type]
        )
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    return render(
        request,
        "amazon/order_detail.html",
        {
            "order": order,
            "items": list(order.items.all()),
            "events": list(seller_data.order_financial_events(order=order)),
            "see_money": role_allows(role, Permission.SEE_MONEY),
        },
    )
