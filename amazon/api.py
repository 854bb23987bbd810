"""REST API for seller connections (/api/v1/connections...) and the synchronised data (/api/v1/listings,
/api/v1/orders).

Secrets are write-only: the create body takes them, no response ever contains them (the output
serializer lists its fields explicitly and has none). `AmazonConnectionError` from the services becomes
the API's error shape in one place, `ConnectionsApiView.handle_exception`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import IDEMPOTENCY_KEY, ListCreateApiView
from accounts.authentication import AuthContext
from accounts.permissions import auth_context
from accounts.roles import Permission, role_allows
from amazon import selectors, seller_data, services
from amazon.models import FinancialEvent, Listing, Order, Region, SellerConnection
from config.api import (
    WRITE_ERRORS,
    ApiError,
    CursorPagination,
    InputSerializer,
    StrictCharField,
    error_responses,
    parse_query,
)

# --- Serializers ----------------------------------------------------------------------------------------


class MarketplaceSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Amazon marketplace id, e.g. ATVPDKIKX0DER.")
    name = serializers.CharField()
    country_code = serializers.CharField()


class OperationQuotaSerializer(serializers.Serializer):
    operation = serializers.CharField(help_text="SP-API operation, e.g. getItemOffers.")
    tokens = serializers.FloatField(
        help_text="Requests that may be sent at once now (may be negative "
        "while waiting callers hold reservations)."
    )
    rate = serializers.FloatField(help_text="Requests per second now (Amazon's announced rate if any).")
    burst = serializers.IntegerField()
    published_rate = serializers.FloatField(help_text="Amazon's published rate for the operation.")
    throttled_recently = serializers.IntegerField(help_text="429 answers in the last hour.")


class QuotaSerializer(serializers.Serializer):
    throttled_recently = serializers.IntegerField(help_text="429 answers in the last hour, all operations.")
    operations = OperationQuotaSerializer(many=True)


class ConnectionSerializer(serializers.ModelSerializer):
    """A connection as integrators see it: never a credential."""

    marketplaces = MarketplaceSerializer(many=True, read_only=True)

    class Meta:
        model = SellerConnection
        fields: tuple[str, ...] = (
            "public_id",
            "name",
            "region",
            "selling_partner_id",
            "marketplaces",
            "status",
            "status_detail",
            "auth_kind",
            "created_at",
            "updated_at",
            "disconnected_at",
            "purge_after",
        )
        read_only_fields: tuple[str, ...] = fields


class ConnectionDetailSerializer(ConnectionSerializer):
    quota = QuotaSerializer(read_only=True, help_text="Rate-limit state per SP-API operation.")

    class Meta(ConnectionSerializer.Meta):
        fields = (*ConnectionSerializer.Meta.fields, "quota")
        read_only_fields = fields


class ConnectionFilterSerializer(InputSerializer):
    status = serializers.ChoiceField(
        choices=SellerConnection.Status.choices,
        required=False,
        help_text="Only connections in this status (disconnected ones are listed too, with purge_after).",
    )


class OwnAppConnectionCreateSerializer(InputSerializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    region = serializers.ChoiceField(choices=Region.choices)
    selling_partner_id = StrictCharField(max_length=64, help_text="The seller's merchant token.")
    lwa_client_id = StrictCharField(max_length=300, write_only=True)
    lwa_client_secret = StrictCharField(max_length=300, write_only=True)
    refresh_token = StrictCharField(max_length=2000, write_only=True)


class ConsentUrlCreateSerializer(InputSerializer):
    region = serializers.ChoiceField(choices=Region.choices)
    redirect_uri = serializers.URLField(
        required=False,
        max_length=500,
        help_text="Where Seller Central sends the seller back; must be registered for the app. "
        "Default: the app's registered redirect.",
    )


ConsentUrlSerializer = inline_serializer(
    name="ConsentUrl",
    fields={
        "url": serializers.URLField(help_text="Open in the seller's browser; valid once."),
        "expires_in": serializers.IntegerField(help_text="Seconds the link stays valid."),
    },
)


def _uuid_path() -> OpenApiParameter:
    return OpenApiParameter(
        "public_id", UUID, OpenApiParameter.PATH, description="The connection's public_id."
    )


def _render_detail(connection: SellerConnection) -> dict[str, Any]:
    data = dict(ConnectionSerializer(connection).data)
    quota = selectors.seller_connection_quota(connection=connection)
    data["quota"] = QuotaSerializer(quota).data
    return data


# --- Views ----------------------------------------------------------------------------------------------


class ConnectionsApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.AmazonConnectionError):
            exc = ApiError(exc.message, code=exc.code, status_code=exc.status)
        return super().handle_exception(exc)

    @property
    def caller(self) -> AuthContext:
        return auth_context(self.request)

    def connection_or_404(self, public_id: UUID) -> SellerConnection:
        """The caller's connection (guardian grants honoured); another company's answers 404."""
        auth = self.caller
        try:
            return selectors.seller_connection_get(tenant=auth.tenant, public_id=public_id, user=auth.user)
        except SellerConnection.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None


@extend_schema_view(
    get=extend_schema(
        operation_id="connections_list",
        parameters=[ConnectionFilterSerializer],
        responses={200: ConnectionSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["amazon"],
        description="The company's Seller Central connections (a member restricted to some connections "
        "sees only those), newest first.",
    ),
    post=extend_schema(
        operation_id="connections_create",
        parameters=[IDEMPOTENCY_KEY],
        request=OwnAppConnectionCreateSerializer,
        responses={
            201: ConnectionSerializer,
            200: ConnectionSerializer,
            **error_responses(*WRITE_ERRORS, 409, 422),
        },
        tags=["amazon"],
        description="Connect with the seller's own developer app. The credentials are checked with Amazon "
        "(an access token and a getMarketplaceParticipations call) before anything is stored; wrong "
        "credentials answer 400 `invalid_credentials`, Amazon unreachable 503 `amazon_unavailable`. "
        "Secrets are write-only. Connecting an account that is already connected re-authorises it (200).",
    ),
)
class ConnectionCollectionView(ConnectionsApiView, ListCreateApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "POST": Permission.CONNECT_AMAZON}
    serializer_class = ConnectionSerializer
    input_serializer_class = OwnAppConnectionCreateSerializer

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, ConnectionFilterSerializer)
        auth = self.caller
        connections = selectors.seller_connection_list(
            tenant=auth.tenant, user=auth.user, include_disconnected=True
        )
        if "status" in filters:
            connections = connections.filter(status=filters["status"])
        return connections

    def create_from(self, data: dict[str, Any]) -> Response:
        auth = self.caller
        existed = (
            selectors.seller_connection_list(tenant=auth.tenant)
            .filter(region=data["region"], selling_partner_id=data["selling_partner_id"].strip())
            .exists()
        )
        connection = services.seller_connection_create_own_app(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            region=data["region"],
            selling_partner_id=data["selling_partner_id"],
            lwa_client_id=data["lwa_client_id"],
            lwa_client_secret=data["lwa_client_secret"],
            refresh_token=data["refresh_token"],
            name=data.get("name", ""),
        )
        return Response(
            ConnectionSerializer(connection).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class ConnectionDetailView(ConnectionsApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "DELETE": Permission.CONNECT_AMAZON}

    @extend_schema(
        operation_id="connections_retrieve",
        parameters=[_uuid_path()],
        responses={200: ConnectionDetailSerializer, **error_responses(403, 404)},
        tags=["amazon"],
        description="One connection with its quota state: per SP-API operation the requests available "
        "now, rate, burst and the 429 answers of the last hour.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        return Response(_render_detail(self.connection_or_404(public_id)))

    @extend_schema(
        operation_id="connections_destroy",
        parameters=[_uuid_path()],
        responses={204: None, **error_responses(403, 404)},
        tags=["amazon"],
        description="Disconnect: the credentials are deleted at once, jobs stop, and the account's Amazon "
        "data is purged AMAZON_DATA_RETENTION_DAYS (30) days later (`purge_after`). Disconnecting twice "
        "is harmless.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        services.seller_connection_disconnect(
            connection=self.connection_or_404(public_id), actor=auth.user, actor_role=auth.role
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConsentUrlView(ConnectionsApiView, generics.GenericAPIView):
    required_permissions = {"POST": Permission.CONNECT_AMAZON}

    @extend_schema(
        operation_id="connections_consent_url_create",
        request=ConsentUrlCreateSerializer,
        responses={200: ConsentUrlSerializer, **error_responses(*WRITE_ERRORS)},
        tags=["amazon"],
        description="The Seller Central URL where the seller authorises SellerPilot's app. Its signed "
        "`state` names the company and the person asking (so only a dashboard token, not an API key, "
        "may ask: 403 `person_required`), works once and expires after 10 minutes. Amazon sends the "
        "seller back to the dashboard, which finishes the connection.",
    )
    def post(self, request: Request) -> Response:
        serializer = ConsentUrlCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        auth = self.caller
        from django.conf import settings

        url = services.consent_url_create(
            tenant=auth.tenant,
            actor=auth.user,
            actor_role=auth.role,
            region=serializer.validated_data["region"],
            redirect_uri=serializer.validated_data.get("redirect_uri", ""),
        )
        return Response({"url": url, "expires_in": settings.SP_API_CONSENT_MAX_AGE_SECONDS})


# --- The synchronised seller data: listings and orders (/api/v1/listings, /api/v1/orders) -----------------
#
# Money (order totals, item prices, fees, refunds) is only for roles with Permission.SEE_MONEY: for the
# others the money fields are left out of the response (they are optional in the schema). Listing and
# Buy Box prices are public on Amazon and shown to every role.

_MONEY_HELP = "Left out for roles without the see_money permission."


def _money(help_text: str = "") -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        allow_null=True,
        help_text=f"{help_text} {_MONEY_HELP}".strip(),
    )


class _MoneyAwareSerializer(serializers.Serializer):
    money_fields: tuple[str, ...] = ()

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        if not self.context.get("see_money", False):
            for name in self.money_fields:
                data.pop(name, None)
        return data


class ListingSerializer(serializers.Serializer):
    public_id = serializers.UUIDField(read_only=True)
    connection = serializers.UUIDField(source="connection.public_id", read_only=True)
    marketplace_id = serializers.CharField(read_only=True)
    sku = serializers.CharField(read_only=True)
    asin = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True, allow_null=True)
    currency = serializers.CharField(read_only=True)
    quantity = serializers.IntegerField(read_only=True, allow_null=True)
    fulfillment_channel = serializers.CharField(read_only=True, help_text="AFN (FBA), MFN, or empty.")
    condition = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Listing.Status.choices, read_only=True)
    buy_box_price = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="Buy Box listing price in the latest offers snapshot (null: no Buy Box or not checked).",
    )
    buy_box_currency = serializers.CharField(read_only=True, allow_null=True)
    we_hold_buy_box = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="From the latest offers snapshot; null before the first."
    )
    offers_observed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_synced_at = serializers.DateTimeField(read_only=True)


class ListingFilterSerializer(InputSerializer):
    q = StrictCharField(required=False, allow_blank=True, max_length=200, help_text="In SKU, ASIN or title.")
    status = serializers.ChoiceField(choices=Listing.Status.choices, required=False)


class OrderSerializer(_MoneyAwareSerializer):
    money_fields = ("order_total",)

    public_id = serializers.UUIDField(read_only=True)
    connection = serializers.UUIDField(source="connection.public_id", read_only=True)
    marketplace_id = serializers.CharField(read_only=True)
    amazon_order_id = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Order.Status.choices, read_only=True)
    purchase_date = serializers.DateTimeField(read_only=True)
    last_update_date = serializers.DateTimeField(read_only=True)
    fulfillment_channel = serializers.CharField(read_only=True)
    order_total = _money("Null while the order is Pending.")
    currency = serializers.CharField(read_only=True)
    number_of_items_shipped = serializers.IntegerField(read_only=True)
    number_of_items_unshipped = serializers.IntegerField(read_only=True)


class OrderItemSerializer(_MoneyAwareSerializer):
    money_fields = ("item_price", "item_tax", "shipping_price")

    order_item_id = serializers.CharField(read_only=True)
    sku = serializers.CharField(read_only=True)
    asin = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    quantity_ordered = serializers.IntegerField(read_only=True)
    quantity_shipped = serializers.IntegerField(read_only=True)
    item_price = _money("For the whole line.")
    item_tax = _money()
    shipping_price = _money()
    currency = serializers.CharField(read_only=True)


class FinancialEventSerializer(_MoneyAwareSerializer):
    money_fields = ("principal", "tax", "shipping", "referral_fee", "fba_fee", "other", "total")

    kind = serializers.ChoiceField(choices=FinancialEvent.Kind.choices, read_only=True)
    posted_date = serializers.DateTimeField(read_only=True)
    adjustment_type = serializers.CharField(read_only=True)
    sku = serializers.CharField(read_only=True)
    quantity = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(read_only=True)
    principal = _money("Signed as Amazon posts it (charges are negative).")
    tax = _money()
    shipping = _money()
    referral_fee = _money()
    fba_fee = _money()
    other = _money("Other charges and fees, promotions, reimbursements.")
    total = _money("What the line moved in the seller's balance.")


class OrderDetailSerializer(OrderSerializer):
    items = OrderItemSerializer(many=True, read_only=True, source="items.all")
    financial_events = FinancialEventSerializer(
        many=True,
        read_only=True,
        source="financial_events_list",
        help_text="Shipment fees, refunds and adjustments posted for the order, oldest first.",
    )


class OrderFilterSerializer(InputSerializer):
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)


class ListingPagination(CursorPagination):
    ordering = ("sku", "id")


class OrderPagination(CursorPagination):
    ordering = ("-purchase_date", "-id")


class SellerDataApiView(generics.GenericAPIView):
    @property
    def caller(self) -> AuthContext:
        return auth_context(self.request)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["see_money"] = role_allows(self.caller.role, Permission.SEE_MONEY)
        return context


@extend_schema_view(
    get=extend_schema(
        operation_id="listings_list",
        parameters=[ListingFilterSerializer],
        responses={200: ListingSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["amazon"],
        description="The seller's listings (one per SKU and marketplace), ordered by SKU, with the Buy Box "
        "from the latest offers snapshot. `q` searches SKU, ASIN and title.",
    )
)
class ListingListView(SellerDataApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = ListingSerializer
    pagination_class = ListingPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, ListingFilterSerializer)
        auth = self.caller
        return seller_data.listing_list(
            tenant=auth.tenant, user=auth.user, q=filters.get("q", ""), status=filters.get("status", "")
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="orders_list",
        parameters=[OrderFilterSerializer],
        responses={200: OrderSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["amazon"],
        description="Amazon orders, newest purchase first. `order_total` is left out for roles without "
        "the see_money permission.",
    )
)
class OrderListView(SellerDataApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = OrderSerializer
    pagination_class = OrderPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, OrderFilterSerializer)
        auth = self.caller
        return seller_data.order_list(tenant=auth.tenant, user=auth.user, status=filters.get("status", ""))


class OrderDetailView(SellerDataApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = OrderDetailSerializer

    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[
            OpenApiParameter("public_id", UUID, OpenApiParameter.PATH, description="The order's public_id.")
        ],
        responses={200: OrderDetailSerializer, **error_responses(403, 404)},
        tags=["amazon"],
        description="One order with its items and financial events (shipment fees, refunds, adjustments). "
        "Money fields are left out for roles without the see_money permission.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        try:
            order = seller_data.order_get(tenant=auth.tenant, public_id=public_id, user=auth.user)
        except Order.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None
        order.financial_events_list = list(seller_data.order_financial_events(order=order))  # type: ignore[attr-defined]
        serializer = OrderDetailSerializer(order, context=self.get_serializer_context())
        return Response(serializer.data)
