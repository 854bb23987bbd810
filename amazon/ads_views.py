"""Amazon Ads API authorisation of a seller connection: the "Advertising" page of a connection and
/api/v1/connections/{public_id}/ads.

The seller pastes an Ads refresh token (Login with Amazon consent for the Advertising API is not built:
the simulator does not model that consent page, so a token obtained elsewhere is entered here). The token
is verified by listing the seller's advertising profiles (amazon.services.ads_connect) before anything is
stored, and it is write-only: no page or response ever shows it. The Ads status is derived from the stored
token and Amazon's last refusal (`ads_status`), without a column of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.pages import dashboard_page
from accounts.roles import Permission, role_allows
from amazon import services
from amazon.api import ConnectionsApiView, _uuid_path
from amazon.models import AdsProfile, SellerConnection
from amazon.views import _actor, _connection
from config.api import WRITE_ERRORS, InputSerializer, StrictCharField, error_responses
from config.redis import redis_client


@dataclass(frozen=True)
class AdsStatus:
    """`not_connected` (no Ads refresh token), `active`, or `needs_reauthorization` (Amazon refused the
    stored grant; amazon.ads_tokens remembers a refusal for a minute, so this state is short-lived)."""

    state: str
    label: str
    detail: str = ""


def ads_status(connection: SellerConnection) -> AdsStatus:
    from amazon.ads_tokens import ADS_REFUSED_KEY

    if not connection.ads_refresh_token_encrypted:
        return AdsStatus("not_connected", "Not connected")
    if redis_client().exists(ADS_REFUSED_KEY.format(connection.public_id)):
        return AdsStatus(
            "needs_reauthorization",
            "Needs re-authorisation",
            "Amazon no longer accepts this Ads API authorisation: enter a new Ads refresh token.",
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
    return render(
        request,
        "amazon/ads_connection.html",
        {
            "connection": connection,
            "ads": ads_status(connection),
            "profiles": _profiles(connection),
            "form": form,
            "can_connect": role_allows(role, Permission.CONNECT_AMAZON),
        },
        status=status,
    )


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
    profiles = AdsProfileSerializer(many=True)


class AdsConnectSerializer(InputSerializer):
    ads_refresh_token = StrictCharField(
        max_length=2000, write_only=True, help_text="LWA refresh token granted for the Advertising API."
    )


def _render(connection: SellerConnection) -> dict[str, Any]:
    state = ads_status(connection)
    return dict(
        AdsAuthorizationSerializer(
            {"status": state.state, "status_detail": state.detail, "profiles": _profiles(connection)}
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
