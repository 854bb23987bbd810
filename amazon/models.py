"""Seller Central connections and their Ads API profiles.

Secrets (LWA client id/secret of a seller's own developer app, the SP-API refresh token, the Ads API
refresh token) are stored only as Fernet ciphertext bound to tenant, table, row and column
(amazon/crypto.py). Use `set_secret` / `get_secret`; the `*_encrypted` columns are never shown,
edited in forms, logged or serialised.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q

from amazon import crypto
from tenants.context import require_tenant
from tenants.models import TenantOwned


class Region(models.TextChoices):
    NA = "NA", "North America"
    EU = "EU", "Europe"
    FE = "FE", "Far East"


class SellerConnection(TenantOwned):
    """One Seller Central account (selling partner) connected by a tenant, in one region."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTHORIZATION = "needs_reauthorization", "Needs re-authorisation"
        DISCONNECTED = "disconnected", "Disconnected"

    class AuthKind(models.TextChoices):
        PLATFORM_APP = "platform_app", "Authorised through Seller Central (our app)"
        OWN_APP = "own_app", "The seller's own developer app"

    #: Secret name -> column holding its ciphertext.
    SECRET_FIELDS: ClassVar[dict[str, str]] = {
        "lwa_client_id": "lwa_client_id_encrypted",
        "lwa_client_secret": "lwa_client_secret_encrypted",
        "refresh_token": "refresh_token_encrypted",
        "ads_refresh_token": "ads_refresh_token_encrypted",
    }

    name = models.CharField(max_length=200, blank=True, help_text="The seller's own label.")
    region = models.CharField(max_length=2, choices=Region.choices)
    selling_partner_id = models.CharField(max_length=64)
    #: [{"id": "ATVPDKIKX0DER", "name": "Amazon.com", "country_code": "US"}, ...]
    marketplaces = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.ACTIVE)
    status_detail = models.CharField(
        max_length=500, blank=True, help_text="Why the connection needs attention, for the seller."
    )
    auth_kind = models.CharField(max_length=20, choices=AuthKind.choices, default=AuthKind.PLATFORM_APP)

    lwa_client_id_encrypted = models.TextField(blank=True, default="", editable=False)
    lwa_client_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    refresh_token_encrypted = models.TextField(blank=True, default="", editable=False)
    ads_refresh_token_encrypted = models.TextField(blank=True, default="", editable=False)

    disconnected_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(
        null=True, blank=True, help_text="Amazon data of a disconnected account is purged after this."
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="sellerconnection_public_id"),
            # One live connection per seller account and region; a disconnected one may be reconnected.
            models.UniqueConstraint(
                fields=["tenant", "region", "selling_partner_id"],
                condition=~Q(status="disconnected"),
                name="sellerconnection_live_account",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="sellerconnection_status")]

    def __str__(self) -> str:
        label = self.name or self.selling_partner_id
        return f"{label} ({self.region}, {self.status})"

    # --- secrets ------------------------------------------------------------------------------------

    def _column(self, field: str) -> str:
        try:
            return self.SECRET_FIELDS[field]
        except KeyError:
            raise ValueError(f"{field!r} is not a secret of a seller connection") from None

    def _context(self, field: str) -> str:
        if self.tenant_id is None:
            raise ValueError("a secret is bound to its tenant: set the tenant first")
        return crypto.binding(
            tenant_id=self.tenant_id,
            model=self._meta.label_lower,
            row_key=str(self.public_id),
            field=field,
        )

    def set_secret(self, field: str, value: str | None) -> None:
        """Encrypt `value` into its column (None or "" clears it). The caller saves."""
        column = self._column(field)
        setattr(self, column, crypto.encrypt_bound(value, context=self._context(field)) if value else "")

    def get_secret(self, field: str) -> str | None:
        """The decrypted secret, None when none is stored; CredentialDecryptionError when it does not
        decrypt for this tenant, row and field."""
        token = getattr(self, self._column(field))
        if not token:
            return None
        return crypto.decrypt_bound(token, context=self._context(field))

    def clear_secrets(self) -> list[str]:
        """Forget every secret; returns the columns to save."""
        for column in self.SECRET_FIELDS.values():
            setattr(self, column, "")
        return list(self.SECRET_FIELDS.values())

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.ACTIVE


class AdsProfile(TenantOwned):
    """An Amazon Ads API profile (one per advertiser and marketplace) of a seller connection."""

    connection = models.ForeignKey(SellerConnection, on_delete=models.CASCADE, related_name="ads_profiles")
    profile_id = models.CharField(max_length=32, help_text="Amazon-Advertising-API-Scope")
    marketplace_id = models.CharField(max_length=20, blank=True)
    country_code = models.CharField(max_length=2, blank=True)
    currency_code = models.CharField(max_length=3, blank=True)
    name = models.CharField(max_length=200, blank=True)
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["country_code", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="adsprofile_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "connection", "profile_id"], name="adsprofile_connection_profile"
            ),
        ]

    def __str__(self) -> str:
        return f"Ads profile {self.profile_id} ({self.country_code or self.marketplace_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The foreign key itself does not check tenants (PostgreSQL's FK checks bypass row-level
        # security), so a profile can never point at another tenant's connection.
        if self.tenant_id is None:
            self.tenant = require_tenant()
        if self.connection.tenant_id != self.tenant_id:
            raise ValueError("an Ads profile belongs to a connection of the same tenant")
        super().save(*args, **kwargs)
