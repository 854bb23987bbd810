"""API shapes for accounts: input serializers (parse and type-check only; the services decide) and
output serializers (what the API shows; never a secret except the new API key, once)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import ApiKey, Invitation, Membership, User
from accounts.roles import ROLE_PERMISSIONS, Permission, Role
from accounts.services import DASHBOARD_LAYOUTS, NOTIFICATION_KINDS
from config.api import InputSerializer, StrictBooleanField, StrictCharField

# --- Shared pieces ----------------------------------------------------------------------------------------


class DashboardLayoutSerializer(InputSerializer):
    density = serializers.ChoiceField(choices=DASHBOARD_LAYOUTS, required=False)


class NotificationPreferencesSerializer(InputSerializer):
    """On/off per kind of email; a kind left out keeps its current value."""

    order_alerts = StrictBooleanField(required=False)
    account_notifications = StrictBooleanField(required=False)
    report_delivery = StrictBooleanField(required=False)
    automation_alerts = StrictBooleanField(required=False)


# One list of kinds: the service's.
assert set(NotificationPreferencesSerializer().fields) == set(NOTIFICATION_KINDS)


class UserRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


# --- Me -------------------------------------------------------------------------------------------------


class UserProfileSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    theme = serializers.ChoiceField(choices=User.Theme.choices)
    dashboard_layout = DashboardLayoutSerializer()
    notification_preferences = NotificationPreferencesSerializer()


class ApiKeyIdentitySerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    expires_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    """Who is calling: a person (dashboard token) or an API key; the other one is null."""

    user = UserProfileSerializer(allow_null=True)
    api_key = ApiKeyIdentitySerializer(allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices, help_text="The caller's role in this company.")
    tenant = serializers.UUIDField(help_text="public_id of the company the credentials belong to.")


class MeUpdateSerializer(InputSerializer):
    full_name = StrictCharField(max_length=200, allow_blank=True, required=False)
    theme = serializers.ChoiceField(choices=User.Theme.choices, required=False)
    dashboard_layout = DashboardLayoutSerializer(required=False)
    notification_preferences = NotificationPreferencesSerializer(required=False)


# --- Tenant ---------------------------------------------------------------------------------------------


class TenantSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    require_mfa = serializers.BooleanField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="Your role here.")
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=[p.value for p in Permission]),
        help_text="What your role allows here.",
    )

    @staticmethod
    def render(tenant: Any, role: str) -> dict[str, Any]:
        return {
            "public_id": tenant.public_id,
            "name": tenant.name,
            "slug": tenant.slug,
            "require_mfa": tenant.require_mfa,
            "role": role,
            "permissions": sorted(p.value for p in ROLE_PERMISSIONS.get(role, frozenset())),
        }


class TenantUpdateSerializer(InputSerializer):
    require_mfa = StrictBooleanField(required=False, help_text="Every member must use two-factor sign-in.")


# --- Members and invitations ----------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    user = UserRefSerializer()

    class Meta:
        model = Membership
        fields = ("public_id", "user", "role", "created_at", "updated_at")
        read_only_fields = fields


class MemberUpdateSerializer(InputSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = UserRefSerializer(allow_null=True)

    class Meta:
        model = Invitation
        fields = ("public_id", "email", "role", "invited_by", "created_at", "expires_at")
        read_only_fields = fields


class InvitationCreateSerializer(InputSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


# --- API keys -------------------------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = UserRefSerializer(allow_null=True)
    is_active = serializers.BooleanField(source="is_usable", help_text="Not revoked and not expired.")

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "public_id",
            "name",
            "prefix",
            "role",
            "is_active",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        )
        read_only_fields: tuple[str, ...] = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        allow_null=True,
        help_text="The secret, shown only in this response (null when an Idempotency-Key replay answers): "
        "store it now, it cannot be shown again.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")
        read_only_fields = fields


class ApiKeyCreateSerializer(InputSerializer):
    name = StrictCharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
