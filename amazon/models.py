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

    # The Ads API side: "not connected" (no Ads token), "active", or "needs re-authorisation" since Amazon
    # refused the stored Ads grant (amazon.services.ads_mark_needs_reauthorization; ads_connect clears it).
    ads_reauthorization_required_at = models.DateTimeField(
        null=True, blank=True, help_text="Since when Amazon refuses the stored Ads API authorisation."
    )
    ads_status_detail = models.CharField(
        max_length=500, blank=True, help_text="Why the Ads authorisation needs attention, for the seller."
    )

    # Amazon's Notifications API (amazon/notifications_subscribe.py): the SQS destination this account's
    # pricing notifications go to and its subscriptions ({"ANY_OFFER_CHANGED": "<subscriptionId>", ...}).
    notifications_destination_id = models.CharField(max_length=100, blank=True)
    notifications_subscriptions = models.JSONField(default=dict, blank=True)
    notifications_subscribed_at = models.DateTimeField(null=True, blank=True)

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

    @property
    def ads_state(self) -> str:
        """`not_connected` (no Ads token), `needs_reauthorization` (Amazon refused it) or `active`."""
        if not self.ads_refresh_token_encrypted:
            return "not_connected"
        return "needs_reauthorization" if self.ads_reauthorization_required_at else "active"


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


# --- synchronised copies of the seller's Amazon data (amazon/sync.py writes them) -------------------------


class Listing(TenantOwned):
    """One of the seller's offers (SKU) in one marketplace, as Amazon last reported it.

    Natural key: (tenant, connection, marketplace_id, sku). Written only by `amazon.sync`."""

    class FulfillmentChannel(models.TextChoices):
        MFN = "MFN", "Merchant fulfilled"
        AFN = "AFN", "Fulfilled by Amazon"

    class Status(models.TextChoices):
        BUYABLE = "buyable", "Buyable"
        DISCOVERABLE = "discoverable", "Visible, not buyable"
        INACTIVE = "inactive", "Inactive"
        REMOVED = "removed", "No longer on Amazon"

    connection = models.ForeignKey(SellerConnection, on_delete=models.CASCADE, related_name="listings")
    marketplace_id = models.CharField(max_length=20)
    sku = models.CharField(max_length=200)
    asin = models.CharField(max_length=20, blank=True)
    title = models.CharField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    quantity = models.IntegerField(null=True, blank=True)
    fulfillment_channel = models.CharField(max_length=3, choices=FulfillmentChannel.choices, blank=True)
    #: Amazon's condition type, e.g. new_new, used_very_good.
    condition = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INACTIVE)
    last_synced_at = models.DateTimeField(help_text="When Amazon last reported this listing.")

    class Meta:
        ordering = ["sku", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="listing_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "connection", "marketplace_id", "sku"], name="listing_natural_key"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "asin"], name="listing_tenant_asin")]

    def __str__(self) -> str:
        return f"{self.sku} ({self.marketplace_id})"

    @property
    def item_condition(self) -> str:
        """The pricing API's ItemCondition (New, Used, Collectible, Refurbished, Club)."""
        head = (self.condition or "new").split("_", 1)[0]
        return {"new": "New", "used": "Used", "collectible": "Collectible", "refurbished": "Refurbished"}.get(
            head, "New"
        )


class OfferSnapshot(TenantOwned):
    """The competition on one listing at one moment (getListingOffersBatch): the repricer's input.

    Append-only history; the newest per listing is the current picture."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="offer_snapshots")
    observed_at = models.DateTimeField()
    #: Amazon's status for the listing's offers: Success, NoBuyableOffers, or the error code.
    status = models.CharField(max_length=40, default="Success")
    currency = models.CharField(max_length=3, blank=True)
    buy_box_price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Buy Box listing price."
    )
    buy_box_landed_price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Buy Box price + shipping."
    )
    buy_box_seller_id = models.CharField(max_length=64, blank=True)
    we_hold_buy_box = models.BooleanField(default=False)
    lowest_landed_price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Lowest landed price, same condition.",
    )
    lowest_landed_price_fba = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    lowest_landed_price_mfn = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    number_of_offers = models.PositiveIntegerField(default=0)
    #: Amazon's Offers list (up to 20, cheapest first), verbatim: seller, price, shipping, FBA, feedback...
    offers = models.JSONField(default=list, blank=True)
    #: Amazon's Summary (offer counts, lowest prices, Buy Box prices, list price, sales ranks), verbatim.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-observed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="offersnapshot_public_id")
        ]
        indexes = [
            models.Index(fields=["tenant", "listing", "-observed_at"], name="offersnapshot_listing_time")
        ]

    def __str__(self) -> str:
        return f"offers of listing {self.listing_id} at {self.observed_at:%Y-%m-%d %H:%M}"


class SyncCursor(TenantOwned):
    """Where a sync of one kind stands for one connection; saved in the same transaction as the batch it
    follows, so an interrupted sync resumes from the last committed batch."""

    connection = models.ForeignKey(SellerConnection, on_delete=models.CASCADE, related_name="sync_cursors")
    #: e.g. "listings:ATVPDKIKX0DER", "orders:ATVPDKIKX0DER".
    kind = models.CharField(max_length=60)
    #: Amazon's page token of the next page of an unfinished pass ("" = start a new pass).
    next_token = models.TextField(blank=True, default="")
    #: Items handled so far in the unfinished pass (progress on resume).
    position = models.PositiveIntegerField(default=0)
    pass_started_at = models.DateTimeField(null=True, blank=True)
    last_completed_at = models.DateTimeField(null=True, blank=True)
    #: For incremental kinds (orders): everything updated up to this moment is stored.
    updated_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="synccursor_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "connection", "kind"], name="synccursor_connection_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} cursor"


# --- orders and the money they move (amazon/sync_orders.py writes them) ----------------------------------


class Order(TenantOwned):
    """One Amazon order of a connected seller account, as getOrders last reported it.

    Natural key: (tenant, connection, amazon_order_id). Written only by `amazon.sync_orders`."""

    class Status(models.TextChoices):
        PENDING = "Pending", "Pending"
        UNSHIPPED = "Unshipped", "Unshipped"
        PARTIALLY_SHIPPED = "PartiallyShipped", "Partially shipped"
        SHIPPED = "Shipped", "Shipped"
        CANCELED = "Canceled", "Canceled"
        UNFULFILLABLE = "Unfulfillable", "Unfulfillable"
        INVOICE_UNCONFIRMED = "InvoiceUnconfirmed", "Invoice unconfirmed"
        PENDING_AVAILABILITY = "PendingAvailability", "Pending availability"

    connection = models.ForeignKey(SellerConnection, on_delete=models.CASCADE, related_name="orders")
    marketplace_id = models.CharField(max_length=20)
    amazon_order_id = models.CharField(max_length=50)
    status = models.CharField(max_length=30, choices=Status.choices)
    purchase_date = models.DateTimeField()
    last_update_date = models.DateTimeField()
    #: AFN (fulfilled by Amazon) or MFN (merchant).
    fulfillment_channel = models.CharField(max_length=3, blank=True)
    #: None while the order is Pending: Amazon gives no total before payment is authorised.
    order_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    number_of_items_shipped = models.PositiveIntegerField(default=0)
    number_of_items_unshipped = models.PositiveIntegerField(default=0)
    #: The `last_update_date` whose order items are stored; differs from it while items are to be fetched.
    items_synced_for = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(help_text="When Amazon last reported this order.")

    class Meta:
        ordering = ["-purchase_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="order_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "connection", "amazon_order_id"], name="order_natural_key"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "purchase_date"], name="order_tenant_purchased"),
            models.Index(fields=["tenant", "connection", "last_update_date"], name="order_last_update"),
        ]

    def __str__(self) -> str:
        return f"order {self.amazon_order_id} ({self.status})"


class OrderItem(TenantOwned):
    """One line of an order (getOrderItems). Prices are for the whole line (unit price x quantity), as
    Amazon reports them, and absent while the order is Pending.

    Natural key: (tenant, order, order_item_id)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    order_item_id = models.CharField(max_length=50)
    sku = models.CharField(max_length=200, blank=True)
    asin = models.CharField(max_length=20, blank=True)
    title = models.CharField(max_length=500, blank=True)
    quantity_ordered = models.PositiveIntegerField(default=0)
    quantity_shipped = models.PositiveIntegerField(default=0)
    item_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    item_tax = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    shipping_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["order_item_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="orderitem_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "order", "order_item_id"], name="orderitem_natural_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} x {self.quantity_ordered}"


class FinancialEvent(TenantOwned):
    """One line of a Finances v0 event: a shipment item, a refunded item, or an adjustment line
    (e.g. an FBA inventory reimbursement). Amounts are signed as Amazon posts them: what the seller is
    charged (fees, refunded principal) is negative.

    Natural key: (tenant, connection, kind, amazon_order_id, posted_date, line_key), where line_key is
    Amazon's OrderItemId (shipment), OrderAdjustmentItemId (refund), or
    "<AdjustmentType>:<SellerSKU>:<line index>" (adjustment): stable across re-reads of the same event,
    so a re-sync updates instead of duplicating."""

    class Kind(models.TextChoices):
        SHIPMENT = "shipment", "Shipment"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    connection = models.ForeignKey(
        SellerConnection, on_delete=models.CASCADE, related_name="financial_events"
    )
    #: Attached once both the event and its order are stored (either may arrive first).
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="financial_events"
    )
    amazon_order_id = models.CharField(max_length=50, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    posted_date = models.DateTimeField()
    line_key = models.CharField(max_length=300)
    #: e.g. FBAInventoryReimbursement for an adjustment.
    adjustment_type = models.CharField(max_length=100, blank=True)
    sku = models.CharField(max_length=200, blank=True)
    quantity = models.IntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True)
    principal = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    tax = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    shipping = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    #: Commission (and, on a refund, the RefundCommission Amazon keeps).
    referral_fee = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    fba_fee = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    #: Everything else: other charges and fees, promotions, reimbursements.
    other = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        ordering = ["-posted_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="financialevent_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "connection", "kind", "amazon_order_id", "posted_date", "line_key"],
                name="financialevent_natural_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "connection", "amazon_order_id"], name="financialevent_order_id"),
            models.Index(fields=["tenant", "posted_date"], name="financialevent_posted"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amazon_order_id or self.adjustment_type} at {self.posted_date:%Y-%m-%d}"

    @property
    def total(self) -> Any:
        """What this line moved in the seller's balance (Decimal)."""
        return self.principal + self.tax + self.shipping + self.referral_fee + self.fba_fee + self.other


# --- notifications intake (amazon/notifications.py writes them) ----------------------------------------


class SellerRoute(models.Model):
    """Which tenants connected a seller account: the notifications intake's routing table.

    Platform-wide on purpose (no row-level security): a notification names only a SellerId, and the intake
    must find the tenant(s) *before* it can enter a tenant context. It holds no Amazon data and no secret,
    only (selling partner id, region) → (tenant, connection public id). One row per live connection,
    maintained by `amazon.services.seller_route_sync` (upserted on connect/re-authorise, deleted on
    disconnect). The same seller account connected by several tenants has one row per tenant; the intake
    fans a notification out to each."""

    selling_partner_id = models.CharField(max_length=64)
    region = models.CharField(max_length=2, choices=Region.choices)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    connection_public_id = models.UUIDField(help_text="The tenant's SellerConnection.public_id.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["selling_partner_id", "region", "tenant_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["selling_partner_id", "region", "tenant"], name="sellerroute_account_tenant"
            ),
            models.UniqueConstraint(fields=["connection_public_id"], name="sellerroute_connection"),
        ]

    def __str__(self) -> str:
        return f"{self.selling_partner_id} ({self.region}) → tenant {self.tenant_id}"


class OfferChangeNotification(TenantOwned):
    """One pricing notification from Amazon (ANY_OFFER_CHANGED or PRICING_HEALTH) for one of the tenant's
    connections, stored as received; repricing consumes it (docs/amazon.md "Notifications").

    De-duplicated by Amazon's NotificationId (surrounding spaces stripped) per tenant."""

    class Kind(models.TextChoices):
        ANY_OFFER_CHANGED = "ANY_OFFER_CHANGED", "Offer changed"
        PRICING_HEALTH = "PRICING_HEALTH", "Pricing health"

    connection = models.ForeignKey(
        SellerConnection, on_delete=models.CASCADE, related_name="offer_change_notifications"
    )
    #: Amazon's NotificationId, stripped; a content hash ("sha256:…") when Amazon sent none.
    notification_id = models.CharField(max_length=100)
    notification_type = models.CharField(max_length=30, choices=Kind.choices)
    seller_id = models.CharField(max_length=64)
    marketplace_id = models.CharField(max_length=32)
    asin = models.CharField(max_length=40)
    item_condition = models.CharField(max_length=40, blank=True)
    time_of_offer_change = models.DateTimeField(null=True, blank=True)
    #: PRICING_HEALTH only: e.g. BuyBoxDisqualification.
    issue_type = models.CharField(max_length=100, blank=True)
    #: Amazon's OfferChangeTrigger, verbatim.
    offer_change_trigger = models.JSONField(default=dict, blank=True)
    #: Amazon's Summary (Buy Box prices, lowest prices, number of offers...), verbatim.
    summary = models.JSONField(default=dict, blank=True)
    #: Amazon's Offers (PRICING_HEALTH: the seller's own merchantOffer), verbatim.
    offers = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField()
    #: Set by repricing once it has acted on this notification.
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="offerchangenotification_public_id"),
            models.UniqueConstraint(
                fields=["tenant", "notification_id"], name="offerchangenotification_notification_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "marketplace_id", "asin", "-received_at"],
                name="offerchangenotif_asin_time",
            ),
            # Repricing's sweep looks for rows left unprocessed (a lost Redis hand-on): few, so partial.
            models.Index(
                fields=["tenant", "received_at"],
                name="offerchangenotif_unprocessed",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} {self.asin} ({self.marketplace_id})"
