"""Amazon Ads API authorisation of a seller connection: the "Advertising" page of a connection,
/api/v1/connections/{public_id}/ads and the Ads consent flow.

Two ways to authorise: **through Amazon** (the page's "Authorise with Amazon" button, or
`POST /api/v1/connections/{id}/ads/consent-url` for the link) sends the seller to Login with Amazon's
consent page with scope advertising::campaign_management; Amazon sends them back to
`/connections/ads/callback/?code=…&scope=…&state=…`, where amazon.services.ads_consent_callback checks the
signed state and exchanges the code. Or the seller **pastes an Ads refresh token** obtained elsewhere.
Either way the grant is verified (the seller's advertising profiles are listed, one of them must be this
connection's seller account) before anything is stored, and the token is write-only: no page or response
ever shows it. The Ads status comes from the connection: no token, active, or needs re-authorisation (a
database mark set when Amazon refuses the grant, cleared by authorising again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.pages import dashboard_page
from accounts.roles import Permission, role_allows
from amazon import services
from amazon.api import ConnectionsApiView, _uuid_path
from amazon.models import AdsProfile, SellerConnection
from amazon.views import _actor, _connection, with_consent_form
from config.api import WRITE_ERRORS, InputSerializer, StrictCharField, error_responses

ADS_REAUTHORIZATION_DETAIL = (
    "Amazon no longer accepts this Ads API authorisation (revoked or expired): authorise Amazon Ads again."
)


@dataclass(frozen=True)
class AdsStatus:
    """`not_connected` (no Ads refresh token), `active`, or `needs_reauthorization` (Amazon refused the
    stored grant; lasting until the seller authorises Ads again). `since`: when Amazon refused it."""

    state: str
    label: str
    detail: str = ""
    since: datetime | None = None


def ads_status(connection: SellerConnection) -> AdsStatus:
    state = connection.ads_state
    if state == "not_connected":
        return AdsStatus("not_connected", "Not connected")
    if state == "needs_reauthorization":
        return AdsStatus(
            "needs_reauthorization",
            "Needs re-authorisation",
            connection.ads_status_detail or ADS_REAUTHORIZATION_DETAIL,
            connection.ads_reauthorization_required_at,
        )
    return AdsStatus("active", "Connected")


def _profiles(connection: SellerConnection) -> list[AdsProfile]:
    return list(AdsProfile.objects.filter(tenant_id=connection.tenant_id, connection=connection))


# --- Dashboard page -----------------------------------------------------------------------------------------


class AdsConnectForm(forms.Form):
    ads_refresh_token = forms.CharField(
        label="Ads API refresh token",
        max_length=2000,
        strip=True,
        # render_value=False (the default): the token is never echoed back into the page
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The Login with Amazon refresh token granted for the Advertising API "
        "(scope advertising::campaign_management). It is stored encrypted and never shown again.",
    )


def _page(
    request: HttpRequest, connection: SellerConnection, form: AdsConnectForm, status: int = 200
) -> HttpResponse:
    _, role = _actor(request)
    can_consent = connection.auth_kind == SellerConnection.AuthKind.PLATFORM_APP
    response = render(
        request,
        "amazon/ads_connection.html",
        {
            "connection": connection,
            "ads": ads_status(connection),
            "profiles": _profiles(connection),
            "form": form,
            "can_connect": role_allows(role, Permission.CONNECT_AMAZON),
            # Our consent flow grants Ads to the platform app; an own-app connection's Ads grant belongs
            # to the seller's app, so its token is pasted.
            "can_consent": can_consent,
        },
        status=status,
    )
    # "Authorise with Amazon" posts here and is redirected to Amazon's Ads consent page.
    return with_consent_form(response, settings.ADS_CONSENT_URLS.values()) if can_consent else response


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("amazon:ads_consent_callback"))


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def ads_connection(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _page(request, _connection(request, public_id), AdsConnectForm())


@dashboard_page(Permission.CONNECT_AMAZON)
@require_POST
def ads_connect_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    connection = _connection(request, public_id)
    form = AdsConnectForm(request.POST)
    if not form.is_valid():
        return _page(request, connection, form, status=400)
    try:
        done = services.ads_connect(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            connection=connection,
            ads_refresh_token=form.cleaned_data["ads_refresh_token"],
        )
    except services.AmazonConnectionError as error:
        form.add_error(None, error.message)
        return _page(request, connection, form, status=error.status if error.status >= 400 else 400)
    count = AdsProfile.objects.filter(connection=done, is_enabled=True).count()
    messages.success(
        request, f"Amazon Ads connected: {count} advertising profile{'s' if count != 1 else ''}."
    )
    return redirect("amazon:connection_ads", public_id=done.public_id)


@dashboard_page(Permission.CONNECT_AMAZON)
@require_POST
def ads_consent_start(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Send the seller to Amazon's Ads consent page (a POST: it records that authorising started)."""
    actor, role = _actor(request)
    connection = _connection(request, public_id)
    try:
        url = services.ads_consent_url_create(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            connection=connection,
            redirect_uri=_callback_uri(request),
        )
    except services.AmazonConnectionError as error:
        messages.error(request, error.message)
        return redirect("amazon:connection_ads", public_id=connection.public_id)
    return redirect(url)


@dashboard_page(Permission.CONNECT_AMAZON)
@require_GET
def ads_consent_callback_view(request: HttpRequest) -> HttpResponse:
    """Where Amazon sends the seller back: `?code=…&scope=…&state=…`, or `?error=access_denied&state=…`
    (a GET, as Amazon sends it; the single-use signed state makes it safe)."""
    actor, role = _actor(request)
    if request.GET.get("error"):
        return _callback_failed(request, "Amazon reports that Amazon Ads was not authorised.")
    try:
        connection = services.ads_consent_callback(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            scope=request.GET.get("scope", ""),
            redirect_uri=_callback_uri(request),
        )
    except services.AmazonConnectionError as error:
        return _callback_failed(request, error.message, status=error.status)
    count = AdsProfile.objects.filter(connection=connection, is_enabled=True).count()
    messages.success(
        request, f"Amazon Ads connected: {count} advertising profile{'s' if count != 1 else ''}."
    )
    return redirect("amazon:connection_ads", public_id=connection.public_id)


def _callback_failed(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(
        request,
        "amazon/ads_callback_failed.html",
        {"message": message},
        status=status if status >= 400 else 400,
    )


@dashboard_page(Permission.CONNECT_AMAZON)
@require_http_methods(["POST"])
def ads_disconnect_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    connection = _connection(request, public_id)
    try:
        services.ads_disconnect(
            tenant=request.tenant,  # type: ignore[attr-defined]
            actor=actor,
            actor_role=role,
            connection=connection,
        )
    except services.AmazonConnectionError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Amazon Ads disconnected: the Ads token is deleted.")
    return redirect("amazon:connection_ads", public_id=connection.public_id)


# --- REST API -----------------------------------------------------------------------------------------------


class AdsProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdsProfile
        fields: tuple[str, ...] = (
            "profile_id",
            "marketplace_id",
            "country_code",
            "currency_code",
            "name",
            "is_enabled",
        )
        read_only_fields: tuple[str, ...] = fields


class AdsAuthorizationSerializer(serializers.Serializer):
    """A connection's Ads API authorisation: never the token."""

    status = serializers.ChoiceField(
        choices=["not_connected", "active", "needs_reauthorization"],
        help_text="not_connected (no Ads token), active, needs_reauthorization (Amazon refused it).",
    )
    status_detail = serializers.CharField()
    reauthorization_required_since = serializers.DateTimeField(
        allow_null=True, help_text="When Amazon refused the stored Ads authorisation (null unless so)."
    )
    profiles = AdsProfileSerializer(many=True)


class AdsConnectSerializer(InputSerializer):
    ads_refresh_token = StrictCharField(
        max_length=2000, write_only=True, help_text="LWA refresh token granted for the Advertising API."
    )


def _render(connection: SellerConnection) -> dict[str, Any]:
    state = ads_status(connection)
    return dict(
        AdsAuthorizationSerializer(
            {
                "status": state.state,
                "status_detail": state.detail,
                "reauthorization_required_since": state.since,
                "profiles": _profiles(connection),
            }
        ).data
    )


class AdsAuthorizationView(ConnectionsApiView):
    required_permissions = {
        "GET": Permission.VIEW_DASHBOARD,
        "POST": Permission.CONNECT_AMAZON,
        "DELETE": Permission.CONNECT_AMAZON,
    }

    @extend_schema(
        operation_id="connections_ads_retrieve",
        parameters=[_uuid_path()],
        responses={200: AdsAuthorizationSerializer, **error_responses(403, 404)},
        tags=["amazon"],
        description="The connection's Amazon Ads authorisation status and advertising profiles.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        return Response(_render(self.connection_or_404(public_id)))

    @extend_schema(
        operation_id="connections_ads_create",
        parameters=[_uuid_path()],
        request=AdsConnectSerializer,
        responses={200: AdsAuthorizationSerializer, **error_responses(*WRITE_ERRORS, 409)},
        tags=["amazon"],
        description="Authorise the Amazon Ads API with an Ads refresh token (write-only). It is checked "
        "by listing the seller's advertising profiles before anything is stored; a wrong token answers 400 "
        "`invalid_ads_token`, Amazon unreachable 503 `amazon_unavailable`. Answers the profiles stored.",
    )
    def post(self, request: Request, public_id: UUID) -> Response:
        serializer = AdsConnectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        auth = self.caller
        connection = services.ads_connect(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            connection=self.connection_or_404(public_id),
            ads_refresh_token=serializer.validated_data["ads_refresh_token"],
        )
        return Response(_render(connection), status=status.HTTP_200_OK)

    @extend_schema(
        operation_id="connections_ads_destroy",
        parameters=[_uuid_path()],
        responses={204: None, **error_responses(403, 404)},
        tags=["amazon"],
        description="Withdraw the Ads authorisation: the Ads token is deleted at once and the profiles "
        "are disabled. The Seller Central (SP-API) connection stays. Harmless when not connected.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        services.ads_disconnect(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            connection=self.connection_or_404(public_id),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


AdsConsentUrlSerializer = inline_serializer(
    name="AdsConsentUrl",
    fields={
        "url": serializers.URLField(help_text="Open in the seller's browser; valid once."),
        "expires_in": serializers.IntegerField(help_text="Seconds the link stays valid."),
    },
)


class AdsConsentUrlView(ConnectionsApiView):
    required_permissions = {"POST": Permission.CONNECT_AMAZON}

    @extend_schema(
        operation_id="connections_ads_consent_url_create",
        parameters=[_uuid_path()],
        request=None,
        responses={200: AdsConsentUrlSerializer, **error_responses(*WRITE_ERRORS, 409)},
        tags=["amazon"],
        description="The Login with Amazon URL where the seller authorises SellerPilot for the Amazon Ads "
        "API (scope advertising::campaign_management) for this connection. Its signed `state` names the "
        "company, the person asking (so only a dashboard token, not an API key, may ask: 403 "
        "`person_required`) and the connection, works once and expires after 10 minutes. Amazon sends the "
        "seller back to the dashboard, which verifies the grant (one of its advertising profiles must be "
        "this connection's seller account) and stores it. Takes no body: Amazon sends the seller back to "
        "this dashboard's Ads callback.",
    )
    def post(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        url = services.ads_consent_url_create(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            connection=self.connection_or_404(public_id),
            redirect_uri=request.build_absolute_uri(reverse("amazon:ads_consent_callback")),
        )
        return Response({"url": url, "expires_in": settings.SP_API_CONSENT_MAX_AGE_SECONDS})
