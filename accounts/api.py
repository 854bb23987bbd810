"""REST API for the caller, the company, members, invitations and API keys (/api/v1/).

Views are thin: parse the input with a serializer, look the object up *in the caller's tenant*, call
one service (which checks the role again and writes the audit event), render. `AccountError` from the
services becomes the API's error shape in exactly one place: `AccountsApiView.handle_exception`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import AuthContext
from accounts.permissions import auth_context
from accounts.roles import Permission
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    MeSerializer,
    MeUpdateSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
)
from config.api import WRITE_ERRORS, ApiError, IdempotentPostMixin, error_responses

# --- OpenAPI: the two ways to authenticate -------------------------------------------------------------


class DashboardTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.DashboardTokenAuthentication"
    name = "dashboardToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sp_dt_…",
            "description": "Short-lived dashboard token (idle and absolute expiry).",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sp_key_…",
            "description": "An API key created by an owner or admin: `Authorization: Bearer sp_key_…`.",
        }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Send a unique value (e.g. a UUID) to make a retry safe: the first response is replayed "
    "for 24 hours; the same key with a different body answers 422.",
)


def _uuid_path(description: str) -> OpenApiParameter:
    return OpenApiParameter("public_id", UUID, OpenApiParameter.PATH, description=description)


# --- Base -----------------------------------------------------------------------------------------------


class AccountsApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.AccountError):
            exc = ApiError(exc.message, code=exc.code, status_code=exc.status)
        return super().handle_exception(exc)

    @property
    def caller(self) -> AuthContext:
        return auth_context(self.request)


class _ServiceCreate:
    """`create()` for a POST that calls a service: parse `input_serializer_class`, hand the validated data to
    `create_from()`. Sits after IdempotentPostMixin in the bases so the mixin wraps it."""

    input_serializer_class: type[Serializer]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.input_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.create_from(dict(serializer.validated_data))

    def create_from(self, data: dict[str, Any]) -> Response:
        raise NotImplementedError


class ListCreateApiView(IdempotentPostMixin, _ServiceCreate, AccountsApiView, generics.ListAPIView):
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.create(request, *args, **kwargs)


def _found(obj: Any) -> Any:
    if obj is None:
        raise exceptions.NotFound("Not found.")
    return obj


# --- Me -------------------------------------------------------------------------------------------------


def _render_me(auth: AuthContext) -> dict[str, Any]:
    user, key = auth.user, auth.api_key
    return {
        "user": None
        if user is None
        else {
            "public_id": user.public_id,
            "email": user.email,
            "full_name": user.full_name,
            "theme": user.theme,
            "dashboard_layout": user.dashboard_layout,
            "notification_preferences": user.notification_preferences,
        },
        "api_key": None
        if key is None
        else {
            "public_id": key.public_id,
            "name": key.name,
            "prefix": key.prefix,
            "role": key.role,
            "expires_at": key.expires_at,
        },
        "role": auth.role,
        "tenant": auth.tenant.public_id,
    }


class MeView(AccountsApiView):
    @extend_schema(
        operation_id="me_retrieve", responses={200: MeSerializer, **error_responses()}, tags=["me"]
    )
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(_render_me(self.caller)).data)

    @extend_schema(
        operation_id="me_update",
        request=MeUpdateSerializer,
        responses={200: MeSerializer, **error_responses(*WRITE_ERRORS)},
        tags=["me"],
        description="Change your own name and preferences. API keys have no person behind them (403).",
    )
    def patch(self, request: Request) -> Response:
        auth = self.caller
        if auth.user is None:
            raise exceptions.PermissionDenied("An API key has no profile or preferences to change.")
        serializer = MeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.user_update_preferences(
            user=auth.user,
            full_name=data.get("full_name"),
            theme=data.get("theme"),
            dashboard_layout=dict(data["dashboard_layout"]) if "dashboard_layout" in data else None,
            notification_preferences=dict(data["notification_preferences"])
            if "notification_preferences" in data
            else None,
        )
        return Response(MeSerializer(_render_me(auth)).data)


# --- Tenant ---------------------------------------------------------------------------------------------


class TenantView(AccountsApiView):
    required_permissions = {"PATCH": Permission.MANAGE_TENANT}

    @extend_schema(
        operation_id="tenant_retrieve",
        responses={200: TenantSerializer, **error_responses()},
        tags=["tenant"],
    )
    def get(self, request: Request) -> Response:
        auth = self.caller
        return Response(TenantSerializer(TenantSerializer.render(auth.tenant, auth.role)).data)

    @extend_schema(
        operation_id="tenant_update",
        request=TenantUpdateSerializer,
        responses={200: TenantSerializer, **error_responses(*WRITE_ERRORS)},
        tags=["tenant"],
        description="Company settings. Owners only.",
    )
    def patch(self, request: Request) -> Response:
        auth = self.caller
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "require_mfa" in data:
            services.tenant_set_require_mfa(
                tenant=auth.tenant, actor=auth.user, actor_role=auth.role, require_mfa=data["require_mfa"]
            )
        return Response(TenantSerializer(TenantSerializer.render(auth.tenant, auth.role)).data)


# --- Members --------------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="members_list",
        responses={200: MemberSerializer(many=True), **error_responses(400, 404)},
        tags=["members"],
    ),
)
class MemberListView(AccountsApiView, generics.ListAPIView):
    serializer_class = MemberSerializer

    def get_queryset(self) -> Any:
        return selectors.members_of_tenant(self.caller.tenant)


class MemberDetailView(AccountsApiView):
    required_permissions = {"PATCH": Permission.MANAGE_MEMBERS, "DELETE": Permission.MANAGE_MEMBERS}

    def _membership(self, public_id: UUID) -> Any:
        return _found(selectors.membership_by_public_id(tenant=self.caller.tenant, public_id=public_id))

    @extend_schema(
        operation_id="members_update",
        parameters=[_uuid_path("The membership's public_id.")],
        request=MemberUpdateSerializer,
        responses={200: MemberSerializer, **error_responses(*WRITE_ERRORS, 404, 409)},
        tags=["members"],
        description="Change a member's role. Only an owner makes or changes owners; the last owner stays.",
    )
    def patch(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        membership = self._membership(public_id)
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = services.membership_change_role(
            membership=membership,
            actor=auth.user,
            actor_role=auth.role,
            role=serializer.validated_data["role"],
        )
        return Response(MemberSerializer(changed).data)

    @extend_schema(
        operation_id="members_destroy",
        parameters=[_uuid_path("The membership's public_id.")],
        responses={204: None, **error_responses(403, 404, 409)},
        tags=["members"],
        description="Remove a member from the company. The last owner cannot be removed.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        services.membership_remove(
            membership=self._membership(public_id), actor=auth.user, actor_role=auth.role
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations ----------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="invitations_list",
        responses={200: InvitationSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["members"],
        description="Pending invitations (not accepted, revoked or expired).",
    ),
    post=extend_schema(
        operation_id="invitations_create",
        parameters=[IDEMPOTENCY_KEY],
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=["members"],
        description="Invite a person by email; they get a link valid for a few days. Only an owner invites "
        "owners. A pending invitation to the same address is replaced.",
    ),
)
class InvitationCollectionView(ListCreateApiView):
    required_permissions = {"GET": Permission.MANAGE_MEMBERS, "POST": Permission.MANAGE_MEMBERS}
    serializer_class = InvitationSerializer
    input_serializer_class = InvitationCreateSerializer

    def get_queryset(self) -> Any:
        return selectors.invitations_pending(self.caller.tenant)

    def create_from(self, data: dict[str, Any]) -> Response:
        auth = self.caller
        invitation, _raw_token = services.invitation_create(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            email=data["email"],
            role=data["role"],
            accept_url_base=self.request.build_absolute_uri("/").rstrip("/"),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(AccountsApiView):
    required_permissions = {"DELETE": Permission.MANAGE_MEMBERS}

    @extend_schema(
        operation_id="invitations_destroy",
        parameters=[_uuid_path("The invitation's public_id.")],
        responses={204: None, **error_responses(403, 404)},
        tags=["members"],
        description="Revoke an invitation; its link stops working. Revoking twice is harmless.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        invitation = _found(selectors.invitation_by_public_id(tenant=auth.tenant, public_id=public_id))
        services.invitation_revoke(invitation=invitation, actor=auth.user, actor_role=auth.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- API keys -------------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="api_keys_list",
        responses={200: ApiKeySerializer(many=True), **error_responses(400, 403, 404)},
        tags=["api keys"],
        description="Every key of the company, revoked and expired ones included. The secret is never shown.",
    ),
    post=extend_schema(
        operation_id="api_keys_create",
        parameters=[IDEMPOTENCY_KEY],
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=["api keys"],
        description="Create a key limited to a role. The secret is in `key`, in this response only.",
    ),
)
class ApiKeyCollectionView(ListCreateApiView):
    required_permissions = {"GET": Permission.MANAGE_API_KEYS, "POST": Permission.MANAGE_API_KEYS}
    serializer_class = ApiKeySerializer
    input_serializer_class = ApiKeyCreateSerializer
    idempotency_omit_on_replay = ("key",)

    def get_queryset(self) -> Any:
        return selectors.api_keys_of_tenant(self.caller.tenant)

    def create_from(self, data: dict[str, Any]) -> Response:
        auth = self.caller
        key, raw = services.api_key_create(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            name=data["name"],
            role=data["role"],
            expires_at=data.get("expires_at"),
        )
        # The secret is shown once, in this response only.
        return Response({**ApiKeySerializer(key).data, "key": raw}, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(AccountsApiView):
    required_permissions = {"DELETE": Permission.MANAGE_API_KEYS}

    @extend_schema(
        operation_id="api_keys_destroy",
        parameters=[_uuid_path("The key's public_id.")],
        responses={204: None, **error_responses(403, 404)},
        tags=["api keys"],
        description="Revoke a key: it stops working at once. Revoking twice is harmless.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        key = _found(selectors.api_key_by_public_id(tenant=auth.tenant, public_id=public_id))
        services.api_key_revoke(key=key, actor=auth.user, actor_role=auth.role)
        return Response(status=status.HTTP_204_NO_CONTENT)
