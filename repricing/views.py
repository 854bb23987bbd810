"""Dashboard pages for repricing: overview (kill switch, company dry run, default rule, time zone,
counts, recent activity), rules (list, create/edit with a real form, activate/deactivate, delete), tag
rules, SKUs (filters, per-SKU settings, bulk rule assignment), a SKU's "why this price" page (price
history chart and every decision with its reason trace and submission), and the activity log.

Views parse input, rely on `@dashboard_page` for sign-in/MFA/membership/role (reading needs
`view_dashboard`, changing `change_automation`, so changes have their own POST routes), read through
`repricing.selectors` (the member's listings only: guardian grants on connections are honoured, so
anything else is 404) and call one service, which checks the role again and writes the audit event.
Service refusals become form errors or messages, never a 500. Money (cost, fees, target margin) is
shown only to roles with `see_money`.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.pages import dashboard_page
from accounts.roles import Permission, role_allows
from amazon.models import Listing
from repricing import selectors, services
from repricing.display import (
    ACTIONS,
    ChartDecision,
    activity_chart,
    alert_label,
    price_chart,
    reason_label,
    rule_summary,
)
from repricing.forms import (
    BulkAssignForm,
    CompanySettingsForm,
    DecisionFilterForm,
    KillSwitchForm,
    RuleForm,
    SkuFilterForm,
    SkuPricingForm,
    TagRuleForm,
)
from repricing.models import PriceDecision, RepricingRule, RepricingSettings, SkuPricing, TagRule
from tenants.models import JobRun

PAGE_SIZE = 50
DECISIONS_PER_PAGE = 20
ACTIVITY_DAYS = 14
RANGES = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}
DEFAULT_RANGE = "7d"
#: Without a chosen range the chart opens on the shortest one holding this many recent points.
CHART_POINTS = 60


def _actor(request: HttpRequest) -> tuple[User, str]:
    return request.user, request.membership.role  # type: ignore[attr-defined,return-value]


def _scope(request: HttpRequest) -> dict[str, Any]:
    """The tenant and the member, for selectors that honour per-connection grants."""
    return {"tenant": request.tenant, "user": request.user}  # type: ignore[attr-defined]


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    settings: RepricingSettings | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render with times in the company's repricing time zone (the day its daily limits count)."""
    settings = settings or selectors.repricing_settings()
    zone = _zone(settings)
    with timezone.override(zone):
        return render(request, template, {**context, "time_zone": zone.key}, status=status)


def _zone(settings: RepricingSettings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _can(request: HttpRequest, permission: Permission) -> bool:
    return role_allows(request.membership.role, permission)  # type: ignore[attr-defined]


def _rules_by_id() -> dict[str, RepricingRule]:
    return {str(rule.public_id): rule for rule in selectors.rules()}


def _rule_or_404(public_id: UUID) -> RepricingRule:
    rule = selectors.rules().filter(public_id=public_id).first()
    if rule is None:
        raise Http404("No such rule.")
    return rule


def _sku_or_404(request: HttpRequest, public_id: UUID) -> Listing:
    try:
        return selectors.sku_get(**_scope(request), public_id=public_id)
    except Listing.DoesNotExist:
        raise Http404("No such SKU.") from None


# --- Overview --------------------------------------------------------------------------------------------


def _overview(
    request: HttpRequest,
    *,
    settings_form: CompanySettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    settings = selectors.repricing_settings()
    rules = list(selectors.rules())
    if settings_form is None:
        settings_form = CompanySettingsForm(
            rules=rules,
            initial={
                "dry_run": settings.dry_run,
                "default_rule": str(settings.default_rule.public_id) if settings.default_rule else "",
                "timezone": settings.timezone,
            },
        )
    zone = _zone(settings)
    first_day = timezone.now().astimezone(zone).date() - timedelta(days=ACTIVITY_DAYS - 1)
    since = datetime.combine(first_day, time.min, tzinfo=zone)
    per_day = selectors.decisions_per_day(**_scope(request), since=since, tzinfo=zone)
    return _render(
        request,
        "repricing/overview.html",
        {
            "settings": settings,
            "kill_switch_change": selectors.kill_switch_last_change(),
            "kill_form": KillSwitchForm(initial={"on": "off" if settings.kill_switch else "on"}),
            "settings_form": settings_form,
            "counts": selectors.sku_counts(**_scope(request), settings=settings),
            "rule_count": len(rules),
            "recent": list(selectors.decision_list(**_scope(request))[:8]),
            "chart": activity_chart(per_day, first_day=first_day, days=ACTIVITY_DAYS),
            "runs": list(JobRun.objects.filter(kind__startswith="repricing")[:5]),
            "can_change": _can(request, Permission.CHANGE_AUTOMATION),
        },
        status=status,
    )


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    return _overview(request)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Turn the kill switch on (stop every submission at once) or off, with a reason."""
    actor, role = _actor(request)
    form = KillSwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to stop or allow price changes.")
        return redirect("repricing:overview")
    on = form.cleaned_data["on"]
    try:
        services.kill_switch_set(on=on, reason=form.cleaned_data["reason"], actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
    else:
        if on:
            messages.warning(
                request, "Kill switch on: no price will be sent to Amazon until you turn it off."
            )
        else:
            messages.success(request, "Kill switch off: prices are sent to Amazon again (unless in dry run).")
    return redirect("repricing:overview")


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def settings_update(request: HttpRequest) -> HttpResponse:
    actor, role = _actor(request)
    rules = _rules_by_id()
    form = CompanySettingsForm(request.POST, rules=rules.values())
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.company_settings_update(
                actor=actor,
                actor_role=role,
                dry_run=data["dry_run"],
                default_rule=rules.get(data["default_rule"] or ""),
                clear_default_rule=not data["default_rule"],
                timezone_name=data["timezone"],
            )
        except services.RepricingError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Repricing settings saved.")
            return redirect("repricing:overview")
    return _overview(request, settings_form=form, status=400)


# --- Rules -----------------------------------------------------------------------------------------------


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    settings = selectors.repricing_settings()
    rules = list(selectors.rules())
    using = selectors.sku_counts_by_rule(**_scope(request), settings=settings)
    own = dict(
        SkuPricing.objects.filter(rule__isnull=False)
        .order_by()
        .values_list("rule_id")
        .annotate(n=Count("pk"))
        .values_list("rule_id", "n")
    )
    tags: dict[int, list[str]] = {}
    for row in selectors.tag_rules():
        tags.setdefault(row.rule_id, []).append(row.tag)
    return _render(
        request,
        "repricing/rules.html",
        {
            "rows": [
                {
                    "rule": rule,
                    "summary": rule_summary(rule.config),
                    "skus": using.get(rule.pk, 0),
                    "own": own.get(rule.pk, 0),
                    "tags": tags.get(rule.pk, []),
                    "is_default": rule.pk == settings.default_rule_id,
                }
                for rule in rules
            ],
            "can_change": _can(request, Permission.CHANGE_AUTOMATION),
        },
    )


def _rule_form_page(
    request: HttpRequest, form: RuleForm, rule: RepricingRule | None, status: int = 200
) -> HttpResponse:
    sections = [(key, title, [form[name] for name in names]) for key, title, names in RuleForm.SECTIONS]
    return _render(
        request,
        "repricing/rule_form.html",
        {
            "form": form,
            "rule": rule,
            "sections": sections,
            "config_json": json.dumps(rule.config, indent=2) if rule else "",
        },
        status=status,
    )


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest) -> HttpResponse:
    actor, role = _actor(request)
    initial: dict[str, Any] = {}
    source = _uuid(request.GET.get("from", ""))
    if source is not None:  # "Duplicate": start from a copy of another rule
        original = selectors.rules().filter(public_id=source).first()
        if original is not None:
            initial = RuleForm.initial_for(original) | {"name": f"Copy of {original.name}"[:200]}
    form = RuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.rule_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                config=form.config(),
                actor=actor,
                actor_role=role,
            )
            if not form.cleaned_data["is_active"]:
                services.rule_update(rule=rule, is_active=False, actor=actor, actor_role=role)
        except services.RepricingError as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Rule “{rule.name}” created.")
            return redirect("repricing:rules")
    return _rule_form_page(request, form, None, status=400 if request.method == "POST" else 200)


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _service_error(form: Any, error: services.RepricingError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    rule = _rule_or_404(public_id)
    form = RuleForm(request.POST or None, initial=RuleForm.initial_for(rule))
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.rule_update(
                rule=rule,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                config=form.config(),
                is_active=form.cleaned_data["is_active"],
                actor=actor,
                actor_role=role,
            )
        except services.RepricingError as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Rule “{rule.name}” saved (version {rule.version}).")
            return redirect("repricing:rules")
    return _rule_form_page(request, form, rule, status=400 if request.method == "POST" else 200)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def rule_toggle(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Activate or deactivate (POST `active=1|0`)."""
    actor, role = _actor(request)
    rule = _rule_or_404(public_id)
    active = request.POST.get("active") == "1"
    try:
        services.rule_update(rule=rule, is_active=active, actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Rule “{rule.name}” {'activated' if active else 'deactivated'}.")
    return redirect("repricing:rules")


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """GET asks for confirmation (saying which SKUs and tags fall back); POST deletes."""
    actor, role = _actor(request)
    rule = _rule_or_404(public_id)
    if request.method == "GET":
        return _render(
            request,
            "repricing/rule_delete.html",
            {
                "rule": rule,
                "own": SkuPricing.objects.filter(rule=rule).count(),
                "tags": [row.tag for row in selectors.tag_rules().filter(rule=rule)],
                "is_default": selectors.repricing_settings().default_rule_id == rule.pk,
            },
        )
    try:
        services.rule_delete(rule=rule, actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
        return redirect("repricing:rules")
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("repricing:rules")


# --- Tag rules -------------------------------------------------------------------------------------------


def _tag_rules(request: HttpRequest, form: TagRuleForm | None = None, status: int = 200) -> HttpResponse:
    rules = list(selectors.rules())
    rows = list(selectors.tag_rules())
    visible = selectors.visible_listings(**_scope(request)).values("pk")
    counts = (
        SkuPricing.objects.filter(listing__in=visible).aggregate(
            **{f"t{row.pk}": Count("pk", filter=Q(tags__contains=[row.tag])) for row in rows}
        )
        if rows
        else {}
    )
    return _render(
        request,
        "repricing/tag_rules.html",
        {
            "rows": [{"tag_rule": row, "skus": counts.get(f"t{row.pk}", 0)} for row in rows],
            "form": form or TagRuleForm(rules=rules),
            "has_rules": bool(rules),
            "known_tags": selectors.known_tags(),
            "can_change": _can(request, Permission.CHANGE_AUTOMATION),
        },
        status=status,
    )


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def tag_rules(request: HttpRequest) -> HttpResponse:
    return _tag_rules(request)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def tag_rule_create(request: HttpRequest) -> HttpResponse:
    """Add a tag rule, or change the rule/priority of an existing tag."""
    actor, role = _actor(request)
    rules = _rules_by_id()
    form = TagRuleForm(request.POST, rules=rules.values())
    if form.is_valid():
        try:
            row = services.tag_rule_set(
                tag=form.cleaned_data["tag"],
                rule=rules[form.cleaned_data["rule"]],
                priority=form.cleaned_data["priority"],
                actor=actor,
                actor_role=role,
            )
        except services.RepricingError as error:
            _service_error(form, error)
        else:
            messages.success(request, f"SKUs tagged “{row.tag}” now use “{row.rule.name}”.")
            return redirect("repricing:tag_rules")
    return _tag_rules(request, form, status=400)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def tag_rule_delete(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    row = TagRule.objects.filter(public_id=public_id).first()
    if row is None:
        raise Http404("No such tag rule.")
    services.tag_rule_remove(tag_rule=row, actor=actor, actor_role=role)
    messages.success(request, f"Tag “{row.tag}” no longer brings a rule.")
    return redirect("repricing:tag_rules")


# --- SKUs ------------------------------------------------------------------------------------------------


def _sku_rows(listings: list[Listing], settings: RepricingSettings) -> list[dict[str, Any]]:
    pricing = selectors.sku_pricing_of(listings)
    resolver = selectors.RuleResolver(settings)
    now = timezone.now()
    rows = []
    for listing in listings:
        row = pricing.get(listing.pk)
        rule, source = resolver.resolve(row)
        rows.append(
            {
                "listing": listing,
                "pricing": row,
                "rule": rule,
                "source": source,
                "paused": bool(row and row.paused_until and row.paused_until > now),
            }
        )
    return rows


def _catalog_filter(request: HttpRequest, data: Any, rules: dict[str, RepricingRule]) -> SkuFilterForm:
    return SkuFilterForm(data, rules=rules.values(), tags=selectors.known_tags())


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def sku_list(request: HttpRequest) -> HttpResponse:
    settings = selectors.repricing_settings()
    rules = _rules_by_id()
    form = _catalog_filter(request, request.GET or None, rules)
    filters = form.filters(rules) if form.is_bound and form.is_valid() else {}
    listings = selectors.sku_catalog(**_scope(request), settings=settings, **filters)
    if form.is_bound and not form.is_valid():
        listings = listings.none()
    per_page = (form.cleaned_data.get("per_page") if form.is_bound and form.is_valid() else None) or PAGE_SIZE
    page = Paginator(listings, per_page).get_page(request.GET.get("page"))
    filtered = any(value not in (None, "") for value in filters.values())
    can_change = _can(request, Permission.CHANGE_AUTOMATION)
    return _render(
        request,
        "repricing/skus.html",
        {
            "form": form,
            "page": page,
            "rows": _sku_rows(list(page.object_list), settings),
            "filtered": filtered,
            "has_listings": bool(page.object_list) or selectors.visible_listings(**_scope(request)).exists(),
            "bulk_form": BulkAssignForm(rules=rules.values(), auto_id="bulk_%s") if can_change else None,
            "can_change": can_change,
            "see_money": _can(request, Permission.SEE_MONEY),
            "query": request.GET.urlencode(),
        },
    )


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def sku_bulk(request: HttpRequest) -> HttpResponse:
    """Assign a rule (or none) to the ticked SKUs, or to every SKU matching the list's filters."""
    actor, role = _actor(request)
    rules = _rules_by_id()
    form = BulkAssignForm(request.POST, rules=rules.values())
    back = reverse("repricing:skus") + (f"?{request.POST['query']}" if request.POST.get("query") else "")
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(back)
    if form.cleaned_data["all_matching"]:
        filter_form = _catalog_filter(request, QueryDict(request.POST.get("query", "")), rules)
        if not filter_form.is_valid():
            messages.error(request, "The list's filters are not valid; nothing was changed.")
            return redirect(back)
        listings = list(selectors.sku_catalog(**_scope(request), **filter_form.filters(rules)))
    else:
        wanted = [value for value in form.cleaned_data["listings"] if _uuid(value)]
        listings = list(selectors.visible_listings(**_scope(request)).filter(public_id__in=wanted))
        if len(listings) != len(set(form.cleaned_data["listings"])):
            raise Http404("No such SKU.")
    if form.cleaned_data["action"] == "reprice":
        return _reprice_selection(request, listings, back)
    choice = form.cleaned_data["rule"]
    rule = None if choice == "none" else rules[choice]
    try:
        count = services.rule_assign_to_listings(rule=rule, listings=listings, actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
    else:
        what = f"“{rule.name}”" if rule else "no rule of their own"
        messages.success(
            request, f"{count} SKU{'s' if count != 1 else ''} now {'use' if rule else 'have'} {what}."
        )
    return redirect(back)


def _reprice_selection(request: HttpRequest, listings: list[Listing], back: str) -> HttpResponse:
    from repricing import pipeline

    actor, role = _actor(request)
    try:
        run = pipeline.reprice_now(listings, actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
        return redirect(back)
    messages.success(
        request,
        f"Repricing {run.progress_total} SKU{'s' if run.progress_total != 1 else ''} now; "
        "follow the progress under “Repricing runs”.",
    )
    return redirect(reverse("repricing:overview") + "#runs-title")


def _price_series(listing: Listing, since: datetime, decisions: list[PriceDecision]) -> dict[str, list[Any]]:
    """Our price, the Buy Box and the lowest competitor over time, from offers snapshots and decisions."""
    ours: list[tuple[datetime, Decimal | None]] = []
    buy_box: list[tuple[datetime, Decimal | None]] = []
    lowest: list[tuple[datetime, Decimal | None]] = []
    for snapshot in selectors.offer_history(listing=listing, since=since):
        buy_box.append((snapshot.observed_at, snapshot.buy_box_price))
        competitor: Decimal | None = None
        for offer in snapshot.offers or []:
            price = _amount(offer.get("ListingPrice"))
            if price is None:
                continue
            if offer.get("MyOffer"):
                ours.append((snapshot.observed_at, price))
            else:
                landed = price + (_amount(offer.get("Shipping")) or Decimal(0))
                competitor = landed if competitor is None else min(competitor, landed)
        lowest.append(
            (snapshot.observed_at, competitor if competitor is not None else snapshot.lowest_landed_price)
        )
    for decision in decisions:
        if decision.old_price is not None:
            ours.append((decision.observed_at, decision.old_price))
        for submission in decision.submissions.all():
            if submission.status == "applied":
                ours.append((submission.finished_at or submission.queued_at, submission.price))
    if listing.price is not None:
        ours.append((max(listing.last_synced_at, since), listing.price))
    return {"ours": ours, "buy_box": buy_box, "lowest": lowest}


def _amount(value: Any) -> Decimal | None:
    if not isinstance(value, dict) or value.get("Amount") is None:
        return None
    try:
        return Decimal(str(value["Amount"]))
    except ArithmeticError:
        return None


def _marker_kind(decision: PriceDecision) -> str:
    if decision.action == "pause":
        return "pause"
    if decision.alerts:
        return "alert"
    return "change" if decision.submit else "dry_run"


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def sku_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    listing = _sku_or_404(request, public_id)
    settings = selectors.repricing_settings()
    pricing = selectors.sku_pricing_of([listing]).get(listing.pk)
    rule, source = selectors.RuleResolver(settings).resolve(pricing)
    now = timezone.now().astimezone(_zone(settings))  # the chart's dates in the seller's time zone
    range_key = request.GET.get("range", "")
    if range_key not in RANGES:
        range_key = _default_range(listing, now)
    since = now - timedelta(days=RANGES[range_key])
    in_range = selectors.decision_list(**_scope(request), listing=listing, since=since).prefetch_related(
        "submissions"
    )
    chart_rows = list(in_range.exclude(action="hold")[:500])
    page_number: Any = request.GET.get("page")
    wanted = _uuid(request.GET.get("decision", ""))
    if wanted is not None:
        target = in_range.filter(public_id=wanted).first()
        if target is not None:  # open the page that holds the decision a chart marker points to
            newer = in_range.filter(
                Q(decided_at__gt=target.decided_at) | Q(decided_at=target.decided_at, id__gt=target.pk)
            ).count()
            page_number = newer // DECISIONS_PER_PAGE + 1
    page = Paginator(in_range, DECISIONS_PER_PAGE).get_page(page_number)
    series = _price_series(listing, since, chart_rows)
    # The chart starts where the history does (within the range), so a few hours are not a sliver.
    observed = [moment for points in (series["buy_box"], series["lowest"]) for moment, _ in points]
    observed += [d.decided_at for d in chart_rows]
    start = since
    if observed:
        start = max(since, min(observed) - (now - min(observed)) * 0.05)
    chart = price_chart(
        start=start,
        end=now,
        series=series,
        decisions=[
            ChartDecision(
                at=d.decided_at,
                price=d.new_price if d.action == "change" else d.old_price,
                kind=_marker_kind(d),
                label=f"{d.decided_at:%b %-d %H:%M}: {ACTIONS.get(d.action, d.action)} "
                f"{d.old_price or '—'} → {d.new_price or '—'} ({reason_label(d.reason)})",
                anchor=f"?range={range_key}&decision={d.public_id}#decision-{d.public_id}",
            )
            for d in chart_rows
        ],
        min_price=pricing.min_price if pricing else None,
        max_price=pricing.max_price if pricing else None,
    )
    if not series["buy_box"] and not page.paginator.count:
        chart.empty = True  # nothing observed or decided in the range: say so rather than draw one flat line
    see_money = _can(request, Permission.SEE_MONEY)
    return _render(
        request,
        "repricing/sku_detail.html",
        {
            "listing": listing,
            "pricing": pricing,
            "rule": rule,
            "source": source,
            "rule_summary": rule_summary(rule.config) if rule else [],
            "settings": settings,
            "chart": chart,
            "page": page,
            "decisions": [_decision_row(d) for d in page.object_list],
            "range_key": range_key,
            "ranges": list(RANGES),
            "paused": bool(pricing and pricing.paused_until and pricing.paused_until > now),
            "can_change": _can(request, Permission.CHANGE_AUTOMATION),
            "see_money": see_money,
        },
    )


def _default_range(listing: Listing, now: datetime) -> str:
    """The shortest range that shows the last CHART_POINTS offers snapshots and decisions."""
    since = now - timedelta(days=max(RANGES.values()))
    snapshots = selectors.offer_history(listing=listing, since=since).order_by("-observed_at")
    decisions = PriceDecision.objects.filter(listing=listing, decided_at__gte=since).order_by("-decided_at")
    moments = [
        *snapshots.values_list("observed_at", flat=True)[:CHART_POINTS],
        *decisions.values_list("decided_at", flat=True)[:CHART_POINTS],
    ]
    if not moments:
        return DEFAULT_RANGE
    span = now - min(moments)
    return next((key for key, days in RANGES.items() if span <= timedelta(days=days)), "90d")


def _decision_row(decision: PriceDecision) -> dict[str, Any]:
    submissions = list(decision.submissions.all())
    return {
        "decision": decision,
        "reason": reason_label(decision.reason),
        "alerts": [alert_label(a) for a in decision.alerts],
        "trace": [step for step in decision.trace if isinstance(step, dict)],
        "submissions": submissions,
    }


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def sku_edit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    listing = _sku_or_404(request, public_id)
    pricing = selectors.sku_pricing_of([listing]).get(listing.pk)
    rules = _rules_by_id()
    see_money = _can(request, Permission.SEE_MONEY)
    form = SkuPricingForm(
        request.POST or None,
        rules=rules.values(),
        see_money=see_money,
        initial=SkuPricingForm.initial_for(pricing),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.sku_pricing_update(
                listing=listing, values=form.values(rules), actor=actor, actor_role=role
            )
        except services.RepricingError as error:
            _service_error(form, error)
        else:
            messages.success(request, f"Repricing settings of {listing.sku} saved.")
            return redirect("repricing:sku_detail", public_id=listing.public_id)
    return _render(
        request,
        "repricing/sku_edit.html",
        {"listing": listing, "pricing": pricing, "form": form, "see_money": see_money},
        status=400 if request.method == "POST" else 200,
    )


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def sku_reprice(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """ "Reprice now" for one SKU: refresh its offers and decide again, in the background."""
    from repricing import pipeline

    actor, role = _actor(request)
    listing = _sku_or_404(request, public_id)
    try:
        pipeline.reprice_now([listing], actor=actor, actor_role=role)
    except services.RepricingError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Repricing {listing.sku} now: its offers are refreshed and the new decision appears below in a "
            "few seconds (reload the page).",
        )
    return redirect("repricing:sku_detail", public_id=listing.public_id)


# --- Activity --------------------------------------------------------------------------------------------


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    form = DecisionFilterForm(
        request.GET or None,
        reasons=selectors.decision_reasons(),
        alerts=selectors.decision_alerts(),
        labels=(reason_label, alert_label),
    )
    settings = selectors.repricing_settings()
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {key: data[key] for key in ("sku", "action", "reason", "alert", "trigger") if data.get(key)}
        zone = _zone(settings)  # dates are the seller's days
        if data.get("since"):
            filters["since"] = datetime.combine(data["since"], time.min, tzinfo=zone)
        if data.get("until"):
            filters["until"] = datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone)
    rows = selectors.decision_list(**_scope(request), **filters).prefetch_related("submissions")
    if form.is_bound and not form.is_valid():
        rows = rows.none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return _render(
        request,
        "repricing/activity.html",
        {
            "form": form,
            "page": page,
            "decisions": [_decision_row(d) for d in page.object_list],
            "filtered": bool(filters),
            "has_listings": bool(page.object_list) or selectors.visible_listings(**_scope(request)).exists(),
        },
    )
