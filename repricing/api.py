"""REST API for repricing (/api/v1/repricing/...): the company's settings and kill switch, rules, tag
rules, each SKU's pricing settings (list with filters, read, change, bulk rule assignment), the
decisions with their inputs and reason trace ("why this price"), the submissions to Amazon, and
"reprice now".

Views are thin: strict input (`InputSerializer`: unknown fields are refused), a look-up among the
caller's own objects (another company's id, or a SKU of a connection the member is not granted, is
404), one service call (which checks the role again and writes the audit event), an output
serializer. `RepricingError` becomes the API's error shape in one place,
`RepricingApiView.handle_exception`. Cost, fees and target margin are left out of SKU responses for
roles without `see_money`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import IDEMPOTENCY_KEY
from accounts.authentication import AuthContext
from accounts.permissions import auth_context
from accounts.roles import Permission, role_allows
from amazon.models import Listing
from config.api import (
    WRITE_ERRORS,
    CursorPagination,
    IdempotentPostMixin,
    InputSerializer,
    StrictBooleanField,
    StrictCharField,
    error_response,
    error_responses,
    parse_query,
)
from repricing import selectors, services
from repricing.display import reason_label, rule_summary
from repricing.models import (
    PriceDecision,
    PriceSubmission,
    RepricingRule,
    RepricingSettings,
    SkuPricing,
    TagRule,
)
from tenants.api import JobRunSerializer

TAGS = ["repricing"]
MONEY_HELP = "Left out for roles without the see_money permission."


def _path_id(what: str) -> OpenApiParameter:
    return OpenApiParameter("public_id", UUID, OpenApiParameter.PATH, description=f"The {what}'s public_id.")


# --- Base -------------------------------------------------------------------------------------------------


class RepricingApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.RepricingError):
            transaction.set_rollback(True)  # a refused request writes nothing
            fields = {exc.field: [exc.message]} if exc.field else None
            return error_response(exc.code, exc.message, exc.status, fields)
        return super().handle_exception(exc)

    @property
    def caller(self) -> AuthContext:
        return auth_context(self.request)

    @property
    def see_money(self) -> bool:
        return role_allows(self.caller.role, Permission.SEE_MONEY)

    def rule_or_404(self, public_id: UUID | None, field: str = "") -> RepricingRule:
        """The company's rule; an unknown id in a path is 404, in a body a validation error."""
        rule = selectors.rules().filter(public_id=public_id).first() if public_id else None
        if rule is None:
            if field:
                raise exceptions.ValidationError({field: ["No such rule."]})
            raise exceptions.NotFound("Not found.")
        return rule

    def listing_or_404(self, public_id: UUID) -> Listing:
        auth = self.caller
        try:
            return selectors.sku_get(tenant=auth.tenant, user=auth.user, public_id=public_id)
        except Listing.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None

    def listings_or_400(self, public_ids: list[UUID], field: str = "listings") -> list[Listing]:
        """The caller's listings for these ids, all of them or a validation error naming the unknown."""
        auth = self.caller
        wanted = list(dict.fromkeys(public_ids))
        found = {
            listing.public_id: listing
            for listing in selectors.visible_listings(tenant=auth.tenant, user=auth.user).filter(
                public_id__in=wanted
            )
        }
        missing = [str(public_id) for public_id in wanted if public_id not in found]
        if missing:
            raise exceptions.ValidationError({field: [f"No such SKU: {', '.join(missing[:5])}."]})
        return [found[public_id] for public_id in wanted]


class _PostBody:
    """`create()` for IdempotentPostMixin, which wraps it (the mixin first in the bases, this after it):
    the view's `post_body()` does the work."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.post_body(request)  # type: ignore[attr-defined]


def _input(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- Settings and kill switch ---------------------------------------------------------------------------


class SettingsSerializer(serializers.Serializer):
    kill_switch = serializers.BooleanField(help_text="On: nothing is sent to Amazon, whatever the rules say.")
    kill_switch_reason = serializers.CharField()
    kill_switch_changed_at = serializers.DateTimeField(allow_null=True)
    kill_switch_changed_by = serializers.CharField(
        allow_null=True, help_text="Who last turned the kill switch on or off (from the audit log)."
    )
    dry_run = serializers.BooleanField(help_text="Whole company: decide and show, send nothing.")
    default_rule = serializers.UUIDField(allow_null=True, help_text="public_id of the default rule.")
    timezone = serializers.CharField(help_text="IANA name; daily limits count from midnight here.")


def _render_settings(settings: RepricingSettings) -> dict[str, Any]:
    change = selectors.kill_switch_last_change()
    data = {
        "kill_switch": settings.kill_switch,
        "kill_switch_reason": settings.kill_switch_reason,
        "kill_switch_changed_at": settings.kill_switch_changed_at,
        "kill_switch_changed_by": change.actor_label if change else None,
        "dry_run": settings.dry_run,
        "default_rule": settings.default_rule.public_id if settings.default_rule else None,
        "timezone": settings.timezone,
    }
    return dict(SettingsSerializer(data).data)  # plain JSON values, as a replayed response has them


class SettingsUpdateSerializer(InputSerializer):
    dry_run = StrictBooleanField(required=False)
    default_rule = serializers.UUIDField(
        required=False, allow_null=True, help_text="A rule's public_id, or null for no default."
    )
    timezone = StrictCharField(required=False, max_length=64, help_text="IANA name, e.g. Europe/Berlin.")


class KillSwitchSerializer(InputSerializer):
    on = StrictBooleanField(help_text="true stops every submission at once; false allows them again.")
    reason = StrictCharField(
        required=False, allow_blank=True, max_length=500, default="", help_text="Shown to the team."
    )


class SettingsView(RepricingApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "PATCH": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_settings_retrieve",
        responses={200: SettingsSerializer, **error_responses(403)},
        tags=TAGS,
        description="The company's repricing switches: kill switch (with who/when/why), dry run, default "
        "rule, time zone. A new company starts in dry run with the kill switch off.",
    )
    def get(self, request: Request) -> Response:
        return Response(_render_settings(selectors.repricing_settings()))

    @extend_schema(
        operation_id="repricing_settings_update",
        request=SettingsUpdateSerializer,
        responses={200: SettingsSerializer, **error_responses(*WRITE_ERRORS, 404)},
        tags=TAGS,
        description="Change dry run, the default rule (null clears it; it must be active) or the time "
        "zone. Fields left out keep their value. Use POST /repricing/kill-switch for the kill switch.",
    )
    def patch(self, request: Request) -> Response:
        data = _input(SettingsUpdateSerializer, request.data)
        auth = self.caller
        default_rule = None
        if data.get("default_rule"):
            default_rule = self.rule_or_404(data["default_rule"], field="default_rule")
        settings = services.company_settings_update(
            actor=auth.user,
            actor_role=auth.role,
            dry_run=data.get("dry_run"),
            default_rule=default_rule,
            clear_default_rule="default_rule" in data and data["default_rule"] is None,
            timezone_name=data.get("timezone"),
        )
        return Response(_render_settings(settings))


class KillSwitchView(IdempotentPostMixin, _PostBody, RepricingApiView):
    required_permissions = {"POST": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_kill_switch",
        parameters=[IDEMPOTENCY_KEY],
        request=KillSwitchSerializer,
        responses={200: SettingsSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=TAGS,
        description="Turn the kill switch on (stop every price submission of the company at once; queued "
        "ones are cancelled before they are sent) or off, with a reason. Decisions keep being made and "
        "recorded. Setting it to the state it is already in changes nothing.",
    )
    def post(self, request: Request) -> Response:
        return self.create(request)

    def post_body(self, request: Request) -> Response:
        data = _input(KillSwitchSerializer, request.data)
        auth = self.caller
        settings = services.kill_switch_set(
            on=data["on"], reason=data.get("reason", ""), actor=auth.user, actor_role=auth.role
        )
        return Response(_render_settings(settings))


# --- Rules ------------------------------------------------------------------------------------------------


class RuleSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    config = serializers.JSONField(help_text="The engine's rule JSON, canonical (every key present).")
    summary = serializers.ListField(child=serializers.CharField(), help_text="The rule in plain words.")
    is_active = serializers.BooleanField()
    is_default = serializers.BooleanField()
    version = serializers.IntegerField(help_text="Grows with each configuration change.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _render_rule(rule: RepricingRule, default_rule_id: int | None) -> dict[str, Any]:
    data = {
        "public_id": rule.public_id,
        "name": rule.name,
        "description": rule.description,
        "config": rule.config,
        "summary": rule_summary(rule.config),
        "is_active": rule.is_active,
        "is_default": rule.pk == default_rule_id,
        "version": rule.version,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }
    return dict(RuleSerializer(data).data)


class _ConfigField(serializers.JSONField):
    """A JSON object (the engine validates its content and names the bad field)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("invalid")
        return super().to_internal_value(data)


_CONFIG_HELP = (
    'The rule as the engine\'s JSON: {"strategy": {"kind": "buy_box", "mode": "beat", "amount": '
    '"0.01"}, "guards": {"max_step": {"percent": "5"}}, ...}; every section but strategy may be left out. '
    "See docs/repricing.md for every option."
)


class RuleCreateSerializer(InputSerializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")
    config = _ConfigField(help_text=_CONFIG_HELP)
    is_active = StrictBooleanField(required=False, default=True)


class RuleUpdateSerializer(InputSerializer):
    name = StrictCharField(required=False, max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=2000)
    config = _ConfigField(required=False, help_text=_CONFIG_HELP)
    is_active = StrictBooleanField(required=False)


class RulePagination(CursorPagination):
    ordering = ("name", "id")


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_rules_list",
        responses={200: RuleSerializer(many=True), **error_responses(400, 403, 404)},
        tags=TAGS,
        description="The company's rules, by name, each with its configuration and a plain-words summary.",
    ),
    post=extend_schema(
        operation_id="repricing_rules_create",
        parameters=[IDEMPOTENCY_KEY],
        request=RuleCreateSerializer,
        responses={201: RuleSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=TAGS,
        description="Create a rule. An invalid configuration answers 400 `invalid_rule` naming the field "
        "(`strategy.amount: beat needs exactly one of amount or percent`); a taken name 400 `duplicate`.",
    ),
)
class RuleCollectionView(IdempotentPostMixin, _PostBody, RepricingApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "POST": Permission.CHANGE_AUTOMATION}
    serializer_class = RuleSerializer
    pagination_class = RulePagination

    def get_queryset(self) -> Any:
        parse_query(self.request, InputSerializer)  # no filters: a stray one is refused
        return selectors.rules()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        default_id = selectors.repricing_settings().default_rule_id
        return self.get_paginated_response([_render_rule(rule, default_id) for rule in page or []])

    def post(self, request: Request) -> Response:
        return self.create(request)

    def post_body(self, request: Request) -> Response:
        data = _input(RuleCreateSerializer, request.data)
        auth = self.caller
        rule = services.rule_create(
            name=data["name"],
            description=data.get("description", ""),
            config=data["config"],
            actor=auth.user,
            actor_role=auth.role,
        )
        if not data.get("is_active", True):
            rule = services.rule_update(rule=rule, is_active=False, actor=auth.user, actor_role=auth.role)
        return Response(
            _render_rule(rule, selectors.repricing_settings().default_rule_id), status=status.HTTP_201_CREATED
        )


class RuleDetailView(RepricingApiView):
    required_permissions = {
        "GET": Permission.VIEW_DASHBOARD,
        "PATCH": Permission.CHANGE_AUTOMATION,
        "DELETE": Permission.CHANGE_AUTOMATION,
    }

    @extend_schema(
        operation_id="repricing_rules_retrieve",
        parameters=[_path_id("rule")],
        responses={200: RuleSerializer, **error_responses(403, 404)},
        tags=TAGS,
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        rule = self.rule_or_404(public_id)
        return Response(_render_rule(rule, selectors.repricing_settings().default_rule_id))

    @extend_schema(
        operation_id="repricing_rules_update",
        parameters=[_path_id("rule")],
        request=RuleUpdateSerializer,
        responses={200: RuleSerializer, **error_responses(*WRITE_ERRORS, 404)},
        tags=TAGS,
        description="Change a rule's name, notes, configuration (a changed configuration bumps `version`) "
        "or activate/deactivate it (`is_active`; the company default cannot be deactivated).",
    )
    def patch(self, request: Request, public_id: UUID) -> Response:
        rule = self.rule_or_404(public_id)
        data = _input(RuleUpdateSerializer, request.data)
        auth = self.caller
        rule = services.rule_update(rule=rule, actor=auth.user, actor_role=auth.role, **data)
        return Response(_render_rule(rule, selectors.repricing_settings().default_rule_id))

    @extend_schema(
        operation_id="repricing_rules_destroy",
        parameters=[_path_id("rule")],
        responses={204: None, **error_responses(400, 403, 404)},
        tags=TAGS,
        description="Delete a rule. SKUs and tags that used it fall back (tag, then default); past "
        "decisions keep its name, version and configuration. The company default answers 400 `in_use`.",
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        services.rule_delete(rule=self.rule_or_404(public_id), actor=auth.user, actor_role=auth.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Tag rules --------------------------------------------------------------------------------------------


class TagRuleSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    tag = serializers.CharField()
    rule = serializers.UUIDField(source="rule.public_id")
    rule_name = serializers.CharField(source="rule.name")
    priority = serializers.IntegerField(help_text="Among a SKU's tags the lowest priority wins.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TagRuleCreateSerializer(InputSerializer):
    tag = StrictCharField(max_length=100)
    rule = serializers.UUIDField(help_text="The rule's public_id.")
    priority = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000, default=100)


class TagRuleUpdateSerializer(InputSerializer):
    rule = serializers.UUIDField(required=False)
    priority = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)


class TagRulePagination(CursorPagination):
    ordering = ("priority", "tag")  # a tag is unique in the company


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_tag_rules_list",
        responses={200: TagRuleSerializer(many=True), **error_responses(400, 403, 404)},
        tags=TAGS,
        description="Tags that bring a rule to every SKU carrying them, by priority.",
    ),
    post=extend_schema(
        operation_id="repricing_tag_rules_create",
        parameters=[IDEMPOTENCY_KEY],
        request=TagRuleCreateSerializer,
        responses={
            201: TagRuleSerializer,
            200: TagRuleSerializer,
            **error_responses(*WRITE_ERRORS, 409, 422),
        },
        tags=TAGS,
        description="Every SKU with `tag` uses `rule` unless it has a rule of its own. A tag that already "
        "has a rule gets the new one (200).",
    ),
)
class TagRuleCollectionView(IdempotentPostMixin, _PostBody, RepricingApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "POST": Permission.CHANGE_AUTOMATION}
    serializer_class = TagRuleSerializer
    pagination_class = TagRulePagination

    def get_queryset(self) -> Any:
        parse_query(self.request, InputSerializer)
        return selectors.tag_rules()

    def post(self, request: Request) -> Response:
        return self.create(request)

    def post_body(self, request: Request) -> Response:
        data = _input(TagRuleCreateSerializer, request.data)
        auth = self.caller
        rule = self.rule_or_404(data["rule"], field="rule")
        existed = TagRule.objects.filter(tag=data["tag"].strip()).exists()
        row = services.tag_rule_set(
            tag=data["tag"], rule=rule, priority=data["priority"], actor=auth.user, actor_role=auth.role
        )
        return Response(
            TagRuleSerializer(row).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )


class TagRuleDetailView(RepricingApiView):
    required_permissions = {
        "GET": Permission.VIEW_DASHBOARD,
        "PATCH": Permission.CHANGE_AUTOMATION,
        "DELETE": Permission.CHANGE_AUTOMATION,
    }

    def tag_rule_or_404(self, public_id: UUID) -> TagRule:
        row = selectors.tag_rules().filter(public_id=public_id).first()
        if row is None:
            raise exceptions.NotFound("Not found.")
        return row

    @extend_schema(
        operation_id="repricing_tag_rules_retrieve",
        parameters=[_path_id("tag rule")],
        responses={200: TagRuleSerializer, **error_responses(403, 404)},
        tags=TAGS,
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        return Response(TagRuleSerializer(self.tag_rule_or_404(public_id)).data)

    @extend_schema(
        operation_id="repricing_tag_rules_update",
        parameters=[_path_id("tag rule")],
        request=TagRuleUpdateSerializer,
        responses={200: TagRuleSerializer, **error_responses(*WRITE_ERRORS, 404)},
        tags=TAGS,
        description="Change the tag's rule or priority.",
    )
    def patch(self, request: Request, public_id: UUID) -> Response:
        row = self.tag_rule_or_404(public_id)
        data = _input(TagRuleUpdateSerializer, request.data)
        auth = self.caller
        rule = self.rule_or_404(data["rule"], field="rule") if "rule" in data else row.rule
        row = services.tag_rule_set(
            tag=row.tag,
            rule=rule,
            priority=data.get("priority", row.priority),
            actor=auth.user,
            actor_role=auth.role,
        )
        return Response(TagRuleSerializer(row).data)

    @extend_schema(
        operation_id="repricing_tag_rules_destroy",
        parameters=[_path_id("tag rule")],
        responses={204: None, **error_responses(403, 404)},
        tags=TAGS,
    )
    def delete(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        services.tag_rule_remove(
            tag_rule=self.tag_rule_or_404(public_id), actor=auth.user, actor_role=auth.role
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- SKU pricing ------------------------------------------------------------------------------------------


def _money_field(help_text: str, money: bool = False) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        required=not money,
        help_text=f"{help_text} {MONEY_HELP}".strip() if money else help_text,
    )


class SkuSerializer(serializers.Serializer):
    """A listing with its repricing settings and state."""

    MONEY_FIELDS = ("cost", "referral_fee_percent", "fba_fee", "bounds_source", "target_percent")

    public_id = serializers.UUIDField(help_text="The listing's public_id.")
    sku = serializers.CharField()
    asin = serializers.CharField()
    title = serializers.CharField()
    connection = serializers.UUIDField()
    marketplace_id = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    buy_box_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    we_hold_buy_box = serializers.BooleanField(allow_null=True)
    enabled = serializers.BooleanField(help_text="Repricing switched on for this SKU.")
    rule = serializers.UUIDField(allow_null=True, help_text="The SKU's own rule (public_id).")
    tags = serializers.ListField(child=serializers.CharField())
    effective_rule = serializers.UUIDField(
        allow_null=True, help_text="The rule that applies: its own, else a tag's, else the default."
    )
    rule_source = serializers.CharField(help_text='"sku", "tag:<tag>", "default" or "none".')
    cost = _money_field("Unit cost.", money=True)
    referral_fee_percent = _money_field("Referral fee, percent.", money=True)
    fba_fee = _money_field("FBA fee per unit.", money=True)
    bounds_source = serializers.ChoiceField(
        choices=SkuPricing.BoundsSource.choices,
        required=False,
        help_text=f"entered, margin or roi. {MONEY_HELP}",
    )
    target_percent = _money_field("Target margin or ROI, percent.", money=True)
    min_price = _money_field("The engine never reprices without both min and max.")
    max_price = _money_field("")
    paused_until = serializers.DateTimeField(allow_null=True)
    paused_reason = serializers.CharField()
    last_changed_at = serializers.DateTimeField(allow_null=True)


def _render_sku(
    listing: Listing, pricing: SkuPricing | None, resolver: selectors.RuleResolver, see_money: bool
) -> dict[str, Any]:
    rule, source = resolver.resolve(pricing)
    data: dict[str, Any] = {
        "public_id": listing.public_id,
        "sku": listing.sku,
        "asin": listing.asin,
        "title": listing.title,
        "connection": listing.connection.public_id,
        "marketplace_id": listing.marketplace_id,
        "price": listing.price,
        "currency": listing.currency,
        "buy_box_price": getattr(listing, "buy_box_price", None),
        "we_hold_buy_box": getattr(listing, "we_hold_buy_box", None),
        "enabled": pricing.enabled if pricing else True,
        "rule": pricing.rule.public_id if pricing and pricing.rule else None,
        "tags": list(pricing.tags) if pricing else [],
        "effective_rule": rule.public_id if rule else None,
        "rule_source": source,
        "min_price": pricing.min_price if pricing else None,
        "max_price": pricing.max_price if pricing else None,
        "paused_until": pricing.paused_until if pricing else None,
        "paused_reason": pricing.paused_reason if pricing else "",
        "last_changed_at": pricing.last_changed_at if pricing else None,
    }
    if see_money:
        data.update(
            cost=pricing.cost if pricing else None,
            referral_fee_percent=pricing.referral_fee_percent if pricing else None,
            fba_fee=pricing.fba_fee if pricing else None,
            bounds_source=pricing.bounds_source if pricing else SkuPricing.BoundsSource.ENTERED,
            target_percent=pricing.target_percent if pricing else None,
        )
    rendered = dict(SkuSerializer(data).data)
    if not see_money:
        for name in SkuSerializer.MONEY_FIELDS:
            rendered.pop(name, None)
    return rendered


class SkuFilterSerializer(InputSerializer):
    q = StrictCharField(required=False, allow_blank=True, max_length=200, help_text="In SKU, ASIN or title.")
    rule = StrictCharField(
        required=False,
        max_length=40,
        help_text='A rule\'s public_id: the SKUs it applies to (own, tag or default); "none": SKUs no rule '
        "applies to.",
    )
    tag = StrictCharField(required=False, max_length=100)
    has_bounds = serializers.ChoiceField(
        choices=[("true", "true"), ("false", "false")], required=False, help_text="Both min and max set."
    )
    paused = serializers.ChoiceField(choices=[("true", "true"), ("false", "false")], required=False)
    enabled = serializers.ChoiceField(choices=[("true", "true"), ("false", "false")], required=False)


class SkuPagination(CursorPagination):
    ordering = ("sku", "id")


class SkuUpdateSerializer(InputSerializer):
    enabled = StrictBooleanField(required=False)
    rule = serializers.UUIDField(required=False, allow_null=True, help_text="Own rule; null: none.")
    tags = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=50, help_text="Replaces the tags."
    )
    cost = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    referral_fee_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True
    )
    fba_fee = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    bounds_source = serializers.ChoiceField(choices=SkuPricing.BoundsSource.choices, required=False)
    target_percent = serializers.DecimalField(max_digits=6, decimal_places=2, required=False, allow_null=True)
    min_price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    max_price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)


class BulkAssignSerializer(InputSerializer):
    listings = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=5000, help_text="Listings' public_ids."
    )
    rule = serializers.UUIDField(allow_null=True, help_text="The rule's public_id; null: no own rule.")


BulkAssignResultSerializer = inline_serializer(
    name="BulkAssignResult",
    fields={
        "assigned": serializers.IntegerField(help_text="How many SKUs now have the rule."),
        "rule": serializers.UUIDField(allow_null=True),
    },
)


class SkuApiView(RepricingApiView):
    def render_skus(self, listings: list[Listing]) -> list[dict[str, Any]]:
        pricing = selectors.sku_pricing_of(listings)
        resolver = selectors.RuleResolver(selectors.repricing_settings())
        return [
            _render_sku(listing, pricing.get(listing.pk), resolver, self.see_money) for listing in listings
        ]


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_skus_list",
        parameters=[SkuFilterSerializer],
        responses={200: SkuSerializer(many=True), **error_responses(400, 403, 404)},
        tags=TAGS,
        description="Every listing the caller may see with its repricing settings, by SKU. Filters: `q`, "
        "`rule` (a public_id or `none`), `tag`, `has_bounds`, `paused`, `enabled` (`true`/`false`). Cost, "
        "fees and the target margin are left out for roles without see_money.",
    )
)
class SkuListView(SkuApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = SkuSerializer
    pagination_class = SkuPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, SkuFilterSerializer)
        auth = self.caller
        flags = {"true": True, "false": False}
        rule: RepricingRule | str | None = None
        if filters.get("rule") == "none":
            rule = "none"
        elif filters.get("rule"):
            try:
                rule = selectors.rules().filter(public_id=UUID(filters["rule"])).first()
            except ValueError:
                rule = None
            if rule is None:
                raise exceptions.ValidationError({"rule": ['A rule\'s public_id or "none".']})
        return selectors.sku_catalog(
            tenant=auth.tenant,
            user=auth.user,
            q=filters.get("q", ""),
            rule=rule,
            tag=filters.get("tag", ""),
            has_bounds=flags.get(filters.get("has_bounds", "")),
            paused=flags.get(filters.get("paused", "")),
            enabled=flags.get(filters.get("enabled", "")),
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.render_skus(list(page or [])))


class SkuDetailView(SkuApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "PATCH": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_skus_retrieve",
        parameters=[_path_id("listing")],
        responses={200: SkuSerializer, **error_responses(403, 404)},
        tags=TAGS,
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        return Response(self.render_skus([self.listing_or_404(public_id)])[0])

    @extend_schema(
        operation_id="repricing_skus_update",
        parameters=[_path_id("listing")],
        request=SkuUpdateSerializer,
        responses={200: SkuSerializer, **error_responses(*WRITE_ERRORS, 404)},
        tags=TAGS,
        description="Change a SKU's own rule, tags, cost, fees, bounds source and min/max (only the fields "
        "given). With `bounds_source` margin or roi the min price is computed from cost, fees and "
        "`target_percent`. The min price may not be above the max.",
    )
    def patch(self, request: Request, public_id: UUID) -> Response:
        listing = self.listing_or_404(public_id)
        values = _input(SkuUpdateSerializer, request.data)
        auth = self.caller
        if "rule" in values:
            values["rule"] = self.rule_or_404(values["rule"], field="rule") if values["rule"] else None
        services.sku_pricing_update(listing=listing, values=values, actor=auth.user, actor_role=auth.role)
        return Response(self.render_skus([listing])[0])


class BulkAssignView(IdempotentPostMixin, _PostBody, SkuApiView):
    required_permissions = {"POST": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_skus_assign_rule",
        parameters=[IDEMPOTENCY_KEY],
        request=BulkAssignSerializer,
        responses={
            200: BulkAssignResultSerializer,
            **error_responses(*WRITE_ERRORS, 409, 422),
        },
        tags=TAGS,
        description="Give up to 5,000 SKUs the same rule of their own (or none, with `rule: null`) in one "
        'transaction. Answers {"assigned": n, "rule": public_id|null}. An id the caller cannot see is '
        "refused (400) and nothing is changed. For more, send batches, each with its Idempotency-Key.",
    )
    def post(self, request: Request) -> Response:
        return self.create(request)

    def post_body(self, request: Request) -> Response:
        data = _input(BulkAssignSerializer, request.data)
        auth = self.caller
        rule = self.rule_or_404(data["rule"], field="rule") if data["rule"] else None
        listings = self.listings_or_400(data["listings"])
        count = services.rule_assign_to_listings(
            rule=rule, listings=listings, actor=auth.user, actor_role=auth.role
        )
        return Response({"assigned": count, "rule": str(rule.public_id) if rule else None})


# --- Decisions and submissions ----------------------------------------------------------------------------


class SubmissionSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    decision = serializers.UUIDField(source="decision.public_id")
    listing = serializers.UUIDField(source="listing.public_id")
    sku = serializers.CharField(source="listing.sku")
    channel = serializers.ChoiceField(choices=PriceSubmission.Channel.choices)
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=PriceSubmission.Status.choices)
    amazon_reference = serializers.CharField(help_text="Amazon's submissionId or feedId.")
    issues = serializers.JSONField(help_text="Amazon's issues for this SKU, verbatim.")
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    queued_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class DecisionSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    listing = serializers.UUIDField(source="listing.public_id")
    sku = serializers.CharField(source="listing.sku")
    asin = serializers.CharField(source="listing.asin")
    trigger = serializers.ChoiceField(choices=PriceDecision.Trigger.choices)
    action = serializers.ChoiceField(choices=PriceDecision.Action.choices)
    reason = serializers.CharField(help_text="Short code of the deciding step (held_at_min, dry_run...).")
    reason_label = serializers.SerializerMethodField(help_text="The reason in plain words.")
    currency = serializers.CharField()
    old_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    target_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    new_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    submit = serializers.BooleanField(help_text="Whether the price was to be sent to Amazon.")
    dry_run = serializers.BooleanField()
    kill_switch = serializers.BooleanField()
    alerts = serializers.ListField(child=serializers.CharField())
    rule = serializers.SerializerMethodField(help_text="public_id of the rule (null if deleted or none).")
    rule_name = serializers.CharField()
    rule_version = serializers.IntegerField(allow_null=True)
    submission_status = serializers.CharField(allow_null=True, help_text="Null when nothing was to be sent.")
    observed_at = serializers.DateTimeField(help_text="When the offers the decision used were observed.")
    decided_at = serializers.DateTimeField()
    decide_ms = serializers.FloatField(help_text="Time inside the engine, milliseconds.")

    def get_reason_label(self, decision: PriceDecision) -> str:
        return reason_label(decision.reason)

    def get_rule(self, decision: PriceDecision) -> str | None:
        rule = decision.rule
        return str(rule.public_id) if rule is not None else None


class DecisionDetailSerializer(DecisionSerializer):
    trace = serializers.JSONField(help_text='The reason trace: [{"code", "message", "data"}...].')
    inputs = serializers.JSONField(help_text="What the engine saw: listing, offers, Buy Box, history.")
    rule_config = serializers.JSONField(help_text="The rule as it was when deciding.")
    notification_received_at = serializers.DateTimeField(allow_null=True)
    submissions = SubmissionSerializer(many=True, source="submissions.all")


class DecisionFilterSerializer(InputSerializer):
    listing = serializers.UUIDField(required=False, help_text="Only this listing's decisions.")
    sku = StrictCharField(required=False, max_length=200, help_text="SKU or ASIN contains (any case).")
    action = serializers.ChoiceField(choices=PriceDecision.Action.choices, required=False)
    reason = StrictCharField(required=False, max_length=60, help_text="A reason code, e.g. held_at_min.")
    alert = StrictCharField(required=False, max_length=40, help_text="price_war, anomaly, out_of_bounds.")
    trigger = serializers.ChoiceField(choices=PriceDecision.Trigger.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Decided at or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Decided before (ISO 8601).")


class DecisionPagination(CursorPagination):
    ordering = ("-decided_at", "-id")


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_decisions_list",
        parameters=[DecisionFilterSerializer],
        responses={200: DecisionSerializer(many=True), **error_responses(400, 403, 404)},
        tags=TAGS,
        description="Every decision across the catalogue, newest first, with the same filters as the "
        "dashboard's activity page. The detail adds the inputs, the reason trace and the submissions.",
    )
)
class DecisionListView(RepricingApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = DecisionSerializer
    pagination_class = DecisionPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, DecisionFilterSerializer)
        auth = self.caller
        if "listing" in filters:
            filters["listing"] = self.listing_or_404(filters["listing"])
        return selectors.decision_list(tenant=auth.tenant, user=auth.user, **filters).select_related("rule")


class DecisionDetailView(RepricingApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}

    @extend_schema(
        operation_id="repricing_decisions_retrieve",
        parameters=[_path_id("decision")],
        responses={200: DecisionDetailSerializer, **error_responses(403, 404)},
        tags=TAGS,
        description='"Why this price": the decision with what the engine saw (`inputs`), the rule as it '
        "was, the trace of every step in plain words, and what was sent to Amazon.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        auth = self.caller
        try:
            decision = selectors.decision_get(tenant=auth.tenant, user=auth.user, public_id=public_id)
        except PriceDecision.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None
        return Response(DecisionDetailSerializer(decision).data)


class SubmissionFilterSerializer(InputSerializer):
    status = serializers.ChoiceField(choices=PriceSubmission.Status.choices, required=False)
    listing = serializers.UUIDField(required=False)


class SubmissionPagination(CursorPagination):
    ordering = ("-queued_at", "-id")


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_submissions_list",
        parameters=[SubmissionFilterSerializer],
        responses={200: SubmissionSerializer(many=True), **error_responses(400, 403, 404)},
        tags=TAGS,
        description="Prices sent (or queued) to Amazon, newest first, with Amazon's answer.",
    )
)
class SubmissionListView(RepricingApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = SubmissionSerializer
    pagination_class = SubmissionPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, SubmissionFilterSerializer)
        auth = self.caller
        listing = self.listing_or_404(filters["listing"]) if "listing" in filters else None
        return selectors.submission_list(
            tenant=auth.tenant, user=auth.user, status=filters.get("status", ""), listing=listing
        )


# --- Reprice now -------------------------------------------------------------------------------------------


class RepriceNowSerializer(InputSerializer):
    listings = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=1000, help_text="Listings' public_ids."
    )


class RepriceNowView(IdempotentPostMixin, _PostBody, RepricingApiView):
    required_permissions = {"POST": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_reprice_now",
        parameters=[IDEMPOTENCY_KEY],
        request=RepriceNowSerializer,
        responses={202: JobRunSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=TAGS,
        description="Refresh the offers of up to 1,000 SKUs and reprice them now, in the background. "
        "Answers 202 with the run; follow its progress with GET /api/v1/job-runs?kind=repricing.reprice_now "
        "and the decisions with GET /api/v1/repricing/decisions?trigger=manual. The kill switch and dry "
        "run still apply.",
    )
    def post(self, request: Request) -> Response:
        return self.create(request)

    def post_body(self, request: Request) -> Response:
        from repricing import pipeline

        data = _input(RepriceNowSerializer, request.data)
        auth = self.caller
        run = pipeline.reprice_now(
            self.listings_or_400(data["listings"]), actor=auth.user, actor_role=auth.role
        )
        return Response(JobRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
