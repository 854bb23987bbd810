"""The repricing run: from a trigger (a competitor's price change, the scheduled poll, "reprice now") to
a recorded decision per SKU and, for a change to send, a queued submission.

`reprice(listings, trigger=...)` does one batch in one transaction (all of it or none of it):

1. **Inputs, in a handful of queries for the whole batch** (never N per SKU): the SKUs' pricing rows
   (locked, so two runs on one SKU take turns on its guard state), the rule of each SKU (SKU > tag >
   default, `RuleResolver`), the newest offers snapshot and the Buy Box share of the last
   `BUY_BOX_SHARE_DEPTH` snapshots (one lateral query), units sold in 7 days (one aggregate over the
   order items; None while the account's orders were never synced), and each SKU's previous decision
   (for undercut detection).
2. **Offers**: from the notification's payload when a notification triggered the run (an
   ANY_OFFER_CHANGED one; a PRICING_HEALTH notification carries no competitors, so the newest snapshot
   is used), else from the newest `OfferSnapshot`; a snapshot taken after the notification's time of
   change is the fresher market and wins (a notification can arrive late). A SKU we never observed is
   not decided (counted `no_offers`): without a market, the strategies' "alone" fallbacks could move
   the price blindly.
3. **No rule, no decision.** A SKU without a rule (nor a tag rule, nor a company default), or whose
   repricing is switched off, is skipped and counted (`no_rule`, `disabled`), never repriced and not
   recorded: rows that say "nothing configured" on every poll would bury the decisions that matter.
4. **Decide** with the engine (`repricing.engine.decide`), timed, and store a `PriceDecision` per SKU
   with its inputs (listing state, offers, Buy Box, history), the rule as it was (name, version,
   configuration), the trace, alerts, the observation time and, for a notification, when it reached us.
5. **Guard state** on `SkuPricing`: the day's opening price in the company's timezone (set at the
   SKU's first decision of the day), `last_changed_at` when a change is queued, the undercut moments
   within the rule's price-war window, and the pause the price-war breaker set.
6. **Submissions**: a decision to send (`submit`) gets a `PriceSubmission` (queued, Listings API
   patch); a newer decision that sends a price or pauses the SKU supersedes the SKU's submissions still
   queued. The sender (`repricing.send_submissions`) is enqueued after commit. The unique
   (tenant, decision) constraint keeps a decision from being sent twice whatever is retried.
7. **Alerts** (price war, anomaly, out of bounds): an audit event and an email to the members who
   may change automation and did not turn "automation alerts" off, at most once per SKU and alert in
   `ALERT_REPEAT_SECONDS` (the audit log remembers, in the same transaction).

An undercut is recorded when an observation shows the lowest competing landed price below ours *and*
lower than at the SKU's previous decision: a competitor moved under us (or further under), not the
same market seen twice. Its moment is the decision's time (when we learned of it).

`reprice_now(listings, actor=..., actor_role=...)` is the seller's "reprice now": checked, audited,
recorded as a `JobRun` the seller can watch, and carried out by the `repricing.reprice_now` task
(repricing/triggers.py refreshes the offers first).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.mail import send_mail
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Membership, User
from accounts.roles import ROLE_PERMISSIONS, Permission, role_allows
from amazon.models import (
    Listing,
    OfferChangeNotification,
    OfferSnapshot,
    Order,
    OrderItem,
    SellerConnection,
    SyncCursor,
)
from config.celery import app
from repricing.engine import Decision, History, ListingState, Offer, Rule, RuleError, decide
from repricing.engine.amazon_offers import OfferFormatError, offers_from_notification, offers_from_pricing
from repricing.engine.money import round_money
from repricing.engine.types import CHANGE, HOLD, PAUSE
from repricing.models import PriceDecision, PriceSubmission, RepricingRule, RepricingSettings, SkuPricing
from repricing.selectors import RuleResolver, repricing_settings
from repricing.services import RepricingError
from tenants.audit import audit_record
from tenants.context import require_tenant, tenant_context
from tenants.jobs import check_task_arguments, enqueue
from tenants.models import AuditEvent, JobRun, Tenant

logger = logging.getLogger(__name__)

Trigger = PriceDecision.Trigger

#: The Buy Box share is the fraction of this many newest snapshots in which we held the Buy Box.
BUY_BOX_SHARE_DEPTH = 20
#: One audit event and email per SKU and alert in this window (the decision records every occurrence).
ALERT_REPEAT_SECONDS = 6 * 3600
#: At most this many undercut moments are kept per SKU (the breaker needs only its window's).
UNDERCUTS_KEPT = 200
#: The task that sends queued submissions (repricing/tasks_submission.py), enqueued by name.
SEND_SUBMISSIONS_TASK = "repricing.send_submissions"
REPRICE_NOW_TASK = "repricing.reprice_now"
REPRICE_NOW_KIND = "repricing.reprice_now"
#: "Reprice now" takes at most this many SKUs at once (their ids travel in the task's arguments).
REPRICE_NOW_MAX_SKUS = 1000
UNITS_WINDOW = timedelta(days=7)


# --- enqueueing by name ---------------------------------------------------------------------------------


def enqueue_named(task_name: str, *, tenant: Tenant, **kwargs: Any) -> None:
    """`tenants.jobs.enqueue` for a task known by name only (its module is someone else's, or importing
    it would be circular): after commit, with the same argument checks."""
    check_task_arguments(kwargs)
    task = app.tasks.get(task_name)
    if task is not None:
        enqueue(task, tenant=tenant, **kwargs)
        return
    transaction.on_commit(lambda: app.send_task(task_name, kwargs={"tenant_id": tenant.pk, **kwargs}))


# --- the batch's inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotFacts:
    """What the newest snapshots of one listing say (one lateral query for a whole batch)."""

    newest_id: int
    newest_observed_at: datetime
    held_now: bool
    held_before: bool | None  # the snapshot before the newest; None when there is only one
    buy_box_share: float
    count: int


def snapshot_facts(listing_ids: Sequence[int], depth: int = BUY_BOX_SHARE_DEPTH) -> dict[int, SnapshotFacts]:
    """Listing id -> facts of its `depth` newest offers snapshots (listings never observed are absent).
    One query, walking the (tenant, listing, -observed_at) index per listing."""
    if not listing_ids:
        return {}
    table = OfferSnapshot._meta.db_table
    sql = f"""
        SELECT l.id,
               (array_agg(s.id ORDER BY s.observed_at DESC, s.id DESC))[1],
               max(s.observed_at),
               (array_agg(s.we_hold_buy_box ORDER BY s.observed_at DESC, s.id DESC))[1],
               (array_agg(s.we_hold_buy_box ORDER BY s.observed_at DESC, s.id DESC))[2],
               count(*) FILTER (WHERE s.we_hold_buy_box),
               count(*)
        FROM unnest(%s::bigint[]) AS l(id)
        CROSS JOIN LATERAL (
            SELECT id, observed_at, we_hold_buy_box FROM {table}
            WHERE tenant_id = %s AND listing_id = l.id
            ORDER BY observed_at DESC, id DESC LIMIT %s
        ) s
        GROUP BY l.id
    """  # noqa: S608 - the table name is ours, every value is a parameter
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [list(listing_ids), require_tenant().pk, depth])
        rows = cursor.fetchall()
    return {
        listing_id: SnapshotFacts(
            newest_id=newest_id,
            newest_observed_at=observed_at,
            held_now=bool(held_now),
            held_before=held_before,
            buy_box_share=held / count if count else 0.0,
            count=count,
        )
        for listing_id, newest_id, observed_at, held_now, held_before, held, count in rows
    }


def _previous_lowest(listing_ids: Sequence[int]) -> dict[int, Decimal | None]:
    """Listing id -> the lowest competing landed price its previous decision saw (one lateral query)."""
    if not listing_ids:
        return {}
    table = PriceDecision._meta.db_table
    sql = f"""
        SELECT l.id, d.inputs -> 'market' ->> 'lowest_competitor_landed'
        FROM unnest(%s::bigint[]) AS l(id)
        CROSS JOIN LATERAL (
            SELECT inputs FROM {table}
            WHERE tenant_id = %s AND listing_id = l.id
            ORDER BY decided_at DESC, id DESC LIMIT 1
        ) d
    """  # noqa: S608 - the table name is ours, every value is a parameter
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [list(listing_ids), require_tenant().pk])
        return {listing_id: Decimal(value) if value else None for listing_id, value in cursor.fetchall()}


def units_sold_7d(listings: Sequence[Listing], now: datetime) -> dict[int, int | None]:
    """Listing id -> units ordered in the last 7 days (cancelled orders left out), None while the
    connection's orders for that marketplace were never synced (unknown is not zero). Two queries."""
    if not listings:
        return {}
    connection_ids = sorted({listing.connection_id for listing in listings})
    known = {
        (connection_id, kind.removeprefix("orders:"))
        for connection_id, kind in SyncCursor.objects.filter(
            connection_id__in=connection_ids, kind__startswith="orders:", updated_until__isnull=False
        ).values_list("connection_id", "kind")
    }
    sold = {
        (row["order__connection_id"], row["order__marketplace_id"], row["sku"]): int(row["units"] or 0)
        for row in OrderItem.objects.filter(
            order__connection_id__in=connection_ids,
            order__purchase_date__gte=now - UNITS_WINDOW,
            sku__in=sorted({listing.sku for listing in listings}),
        )
        .exclude(order__status=Order.Status.CANCELED)
        .values("order__connection_id", "order__marketplace_id", "sku")
        .annotate(units=Sum("quantity_ordered"))
    }
    return {
        listing.pk: sold.get((listing.connection_id, listing.marketplace_id, listing.sku), 0)
        if (listing.connection_id, listing.marketplace_id) in known
        else None
        for listing in listings
    }


def days_of_cover(quantity: int | None, units_7d: int | None) -> float | None:
    """Stock / daily velocity, when both are known and the SKU sells (no sales: unknown, not infinite)."""
    if quantity is None or units_7d is None or units_7d <= 0:
        return None
    return round(max(quantity, 0) / (units_7d / 7), 2)


# --- one listing's observation ----------------------------------------------------------------------------


@dataclass
class Observation:
    """The market one decision used: where it came from, when, the offers and the Buy Box."""

    source: str  # "notification" | "snapshot"
    ref: str  # the notification's or the snapshot's public id
    observed_at: datetime
    offers: list[Offer]
    buy_box: dict[str, Any] | None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _offer_dict(offer: Offer) -> dict[str, Any]:
    return {f.name: _plain(getattr(offer, f.name)) for f in fields(offer)}


def _winner(offers: Sequence[Offer], condition: str) -> Offer | None:
    holders = [o for o in offers if o.is_buy_box_winner and o.condition == condition]
    return min(holders, key=lambda o: (o.landed, o.seller_id)) if holders else None


def _buy_box_from_offers(offers: Sequence[Offer], condition: str) -> dict[str, Any] | None:
    winner = _winner(offers, condition)
    if winner is None:
        return None
    return {
        "seller_id": winner.seller_id,
        "price": str(winner.price),
        "shipping": str(winner.shipping),
        "landed": str(winner.landed),
        "ours": winner.is_ours,
        "from": "offers",
    }


def _from_snapshot(snapshot: OfferSnapshot, listing: Listing, our_seller_id: str) -> Observation:
    offers = offers_from_pricing(
        list(snapshot.offers or []), our_seller_id, item_condition=listing.item_condition
    )
    condition = listing.item_condition.lower()
    buy_box = _buy_box_from_offers(offers, condition)
    if buy_box is None and snapshot.buy_box_price is not None:
        buy_box = {
            "seller_id": snapshot.buy_box_seller_id,
            "price": _plain(snapshot.buy_box_price),
            "landed": _plain(snapshot.buy_box_landed_price),
            "ours": snapshot.we_hold_buy_box,
            "from": "summary",
        }
    return Observation("snapshot", str(snapshot.public_id), snapshot.observed_at, offers, buy_box)


def notification_payload(row: OfferChangeNotification) -> dict[str, Any]:
    """The AnyOfferChangedNotification object as Amazon sent it, from the stored row."""
    return {
        "SellerId": row.seller_id,
        "OfferChangeTrigger": row.offer_change_trigger,
        "Summary": row.summary,
        "Offers": row.offers,
    }


def _notification_time(row: OfferChangeNotification) -> datetime:
    """When the market a notification describes was seen: Amazon's time of change, else its arrival."""
    return row.time_of_offer_change or row.received_at


def _from_notification(row: OfferChangeNotification, listing: Listing, our_seller_id: str) -> Observation:
    offers = offers_from_notification(notification_payload(row), our_seller_id)
    buy_box = _buy_box_from_offers(offers, listing.item_condition.lower())
    if buy_box is None:
        prices = [p for p in (row.summary or {}).get("BuyBoxPrices") or [] if isinstance(p, dict)]
        mine = [p for p in prices if str(p.get("Condition", "")).lower() == listing.item_condition.lower()]
        if mine:
            landed = (mine[0].get("LandedPrice") or {}).get("Amount")
            price = (mine[0].get("ListingPrice") or {}).get("Amount")
            buy_box = {
                "seller_id": "",
                "price": None if price is None else str(price),
                "landed": None if landed is None else str(landed),
                "ours": None,
                "from": "summary",
            }
    return Observation("notification", str(row.public_id), _notification_time(row), offers, buy_box)


# --- the batch ------------------------------------------------------------------------------------------


@dataclass
class RepriceResult:
    decisions: list[PriceDecision] = field(default_factory=list)
    submissions: list[PriceSubmission] = field(default_factory=list)
    #: SKUs not decided, by why: no_rule, disabled, removed, no_offers, bad_offers, invalid_rule.
    skipped: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        """The run's counts: decided, changed, held, paused, submitted, then the skipped by reason."""
        actions = Counter(d.action for d in self.decisions)
        counts = {
            "decided": len(self.decisions),
            "changed": actions.get(CHANGE, 0),
            "held": actions.get(HOLD, 0),
            "paused": actions.get(PAUSE, 0),
            "submitted": len(self.submissions),
        }
        counts.update({f"skipped_{reason}": n for reason, n in sorted(self.skipped.items())})
        return counts


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


class _Rules:
    """Parsed rules, once per (rule, version) in a batch."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[int, int], Rule | None] = {}

    def parse(self, rule: RepricingRule) -> Rule | None:
        key = (rule.pk, rule.version)
        if key not in self._parsed:
            try:
                self._parsed[key] = Rule.from_dict(rule.config)
            except RuleError:
                logger.exception(
                    "repricing rule %s v%s no longer parses; its SKUs are skipped", rule.pk, rule.version
                )
                self._parsed[key] = None
        return self._parsed[key]


def _listing_state(
    listing: Listing,
    pricing: SkuPricing | None,
    observation: Observation,
    units_7d: int | None,
) -> tuple[ListingState, str]:
    """The engine's view of our listing, and where its current price came from ("listing" or "offers":
    our own offer in an observation newer than the listings sync is the fresher price)."""
    condition = listing.item_condition.lower()
    ours = [o for o in observation.offers if o.is_ours and o.condition == condition]
    current = listing.price
    source = "listing"
    shipping = ours[0].shipping if len(ours) == 1 else Decimal(0)
    if len(ours) == 1 and observation.observed_at > listing.last_synced_at:
        current, source = round_money(ours[0].price, ours[0].currency), "offers"
    state = ListingState(
        sku=listing.sku,
        asin=listing.asin,
        marketplace_id=listing.marketplace_id,
        currency=listing.currency or (observation.offers[0].currency if observation.offers else "USD"),
        condition=condition,
        fulfillment="FBA" if listing.fulfillment_channel == Listing.FulfillmentChannel.AFN else "FBM",
        current_price=current,
        our_shipping=shipping,
        min_price=pricing.min_price if pricing else None,
        max_price=pricing.max_price if pricing else None,
        quantity=listing.quantity,
        units_sold_7d=units_7d,
        days_of_cover=days_of_cover(listing.quantity, units_7d),
        aged_units=None,  # until the Inventory issue knows stock age
    )
    return state, source


def _lowest_competitor(state: ListingState, offers: Sequence[Offer]) -> Decimal | None:
    landed = [
        o.landed
        for o in offers
        if not o.is_ours and o.condition == state.condition and o.currency == state.currency
    ]
    return min(landed) if landed else None


def _state_dict(state: ListingState) -> dict[str, Any]:
    return {f.name: _plain(getattr(state, f.name)) for f in fields(state)}


def _history_dict(history: History) -> dict[str, Any]:
    return {f.name: _plain(getattr(history, f.name)) for f in fields(history)}


def reprice(
    listings: Iterable[Listing],
    *,
    trigger: str,
    offers_by_listing: Mapping[int, OfferSnapshot] | None = None,
    notification_by_listing: Mapping[int, OfferChangeNotification] | None = None,
    now: datetime | None = None,
) -> list[PriceDecision]:
    """Decide and record a batch (see the module docstring); the stored decisions, in listing order."""
    return reprice_batch(
        listings,
        trigger=trigger,
        offers_by_listing=offers_by_listing,
        notification_by_listing=notification_by_listing,
        now=now,
    ).decisions


def reprice_batch(
    listings: Iterable[Listing],
    *,
    trigger: str,
    offers_by_listing: Mapping[int, OfferSnapshot] | None = None,
    notification_by_listing: Mapping[int, OfferChangeNotification] | None = None,
    now: datetime | None = None,
) -> RepriceResult:
    """`reprice` with the submissions and the skipped SKUs (for the run's counts). One transaction."""
    if trigger not in Trigger.values:
        raise ValueError(f"unknown trigger {trigger!r}")
    tenant = require_tenant()
    now = now or timezone.now()
    offers_by_listing = offers_by_listing or {}
    notification_by_listing = notification_by_listing or {}
    unique: dict[int, Listing] = {}
    for listing in listings:
        unique.setdefault(listing.pk, listing)
    batch = sorted(unique.values(), key=lambda li: li.pk)
    result = RepriceResult()
    if not batch:
        return result
    with tenant_context(tenant):
        _reprice_in_transaction(
            tenant, batch, trigger, offers_by_listing, notification_by_listing, now, result
        )
    return result


def _reprice_in_transaction(
    tenant: Tenant,
    batch: list[Listing],
    trigger: str,
    offers_by_listing: Mapping[int, OfferSnapshot],
    notification_by_listing: Mapping[int, OfferChangeNotification],
    now: datetime,
    result: RepriceResult,
) -> None:
    settings = repricing_settings()
    zone = ZoneInfo(settings.timezone or "UTC")
    today = now.astimezone(zone).date()
    ids = [listing.pk for listing in batch]
    # Locked in listing order (every run locks the same way): concurrent runs on a SKU take turns.
    pricing = {
        row.listing_id: row
        for row in SkuPricing.objects.select_for_update(of=("self",))
        .filter(listing_id__in=ids)
        .select_related("rule")
        .order_by("listing_id")
    }
    resolver = RuleResolver(settings)
    rules = _Rules()

    # Who is decided, with which rule.
    todo: list[tuple[Listing, RepricingRule, Rule, str]] = []
    for listing in batch:
        row = pricing.get(listing.pk)
        if listing.status == Listing.Status.REMOVED:
            result.skipped["removed"] += 1
            continue
        if row is not None and not row.enabled:
            result.skipped["disabled"] += 1
            continue
        model_rule, rule_source = resolver.resolve(row)
        if model_rule is None:
            result.skipped["no_rule"] += 1
            continue
        parsed = rules.parse(model_rule)
        if parsed is None:
            result.skipped["invalid_rule"] += 1
            continue
        todo.append((listing, model_rule, parsed, rule_source))
    if not todo:
        return

    todo_ids = [listing.pk for listing, *_ in todo]
    facts = snapshot_facts(todo_ids)
    wanted_snapshots = [facts[i].newest_id for i in todo_ids if i in facts and i not in offers_by_listing]
    snapshots: dict[int, OfferSnapshot] = {
        s.listing_id: s for s in OfferSnapshot.objects.filter(pk__in=wanted_snapshots)
    }
    snapshots.update(offers_by_listing)
    sellers = dict(
        SellerConnection.objects.filter(pk__in={li.connection_id for li, *_ in todo}).values_list(
            "pk", "selling_partner_id"
        )
    )
    units = units_sold_7d([li for li, *_ in todo], now)
    previous_lowest = _previous_lowest(todo_ids)

    decisions: list[PriceDecision] = []
    touched: dict[int, SkuPricing] = {}
    alerts: list[tuple[Listing, PriceDecision]] = []
    for listing, model_rule, rule, rule_source in todo:
        our_seller_id = sellers.get(listing.connection_id, "")
        notification = notification_by_listing.get(listing.pk)
        snapshot = snapshots.get(listing.pk)
        try:
            if (
                notification is not None
                and notification.notification_type == OfferChangeNotification.Kind.ANY_OFFER_CHANGED
                and (snapshot is None or snapshot.observed_at <= _notification_time(notification))
            ):
                observation = _from_notification(notification, listing, our_seller_id)
            elif snapshot is not None:
                observation = _from_snapshot(snapshot, listing, our_seller_id)
            else:
                result.skipped["no_offers"] += 1
                continue
        except OfferFormatError:
            logger.warning(
                "repricing: unreadable offers for listing %s; not decided", listing.pk, exc_info=True
            )
            result.skipped["bad_offers"] += 1
            continue

        row = pricing.get(listing.pk)
        state, price_source = _listing_state(listing, row, observation, units.get(listing.pk))
        lowest = _lowest_competitor(state, observation.offers)
        before = previous_lowest.get(listing.pk)
        our_landed = None if state.current_price is None else state.current_price + state.our_shipping
        undercut = (
            lowest is not None
            and our_landed is not None
            and before is not None
            and lowest < our_landed
            and lowest < before
        )
        window = rule.guards.price_war.window_seconds if rule.guards.price_war else 0
        undercuts = tuple(
            t for t in (row.undercut_times if row else []) if window and t > now - timedelta(seconds=window)
        )
        if undercut and window:
            undercuts = (*undercuts, now)
        opening = row.day_open_price if row is not None and row.day_open_date == today else None
        share = facts[listing.pk].buy_box_share if listing.pk in facts else None
        history = History(
            now=now,
            last_change_at=row.last_changed_at if row else None,
            day_open_price=opening,
            undercut_times=undercuts,
            buy_box_share=share,
            paused_until=row.paused_until if row else None,
        )
        started = time.perf_counter()
        decision = decide(
            state,
            observation.offers,
            rule,
            history,
            kill_switch=settings.kill_switch,
            tenant_dry_run=settings.dry_run,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        record = _decision_row(
            tenant=tenant,
            listing=listing,
            model_rule=model_rule,
            rule=rule,
            rule_source=rule_source,
            trigger=trigger,
            decision=decision,
            settings=settings,
            state=state,
            price_source=price_source,
            history=history,
            observation=observation,
            lowest=lowest,
            undercut=undercut,
            notification=notification,
            now=now,
            elapsed_ms=elapsed_ms,
        )
        decisions.append(record)
        if decision.alerts:
            alerts.append((listing, record))
        if row is not None and _update_guard_state(row, decision, state, undercuts, today, now):
            touched[row.pk] = row

    PriceDecision.objects.bulk_create(decisions)
    result.decisions = decisions
    result.submissions = _queue_submissions(tenant, decisions, now)
    if touched:
        _save_guard_state(tenant, list(touched.values()))
    if alerts:
        _raise_alerts(tenant, alerts)


def _decision_row(
    *,
    tenant: Tenant,
    listing: Listing,
    model_rule: RepricingRule,
    rule: Rule,
    rule_source: str,
    trigger: str,
    decision: Decision,
    settings: RepricingSettings,
    state: ListingState,
    price_source: str,
    history: History,
    observation: Observation,
    lowest: Decimal | None,
    undercut: bool,
    notification: OfferChangeNotification | None,
    now: datetime,
    elapsed_ms: float,
) -> PriceDecision:
    inputs = {
        "listing": {**_state_dict(state), "current_price_from": price_source},
        "offers": [_offer_dict(offer) for offer in observation.offers],
        "buy_box": observation.buy_box,
        "history": _history_dict(history),
        "market": {
            "lowest_competitor_landed": _plain(lowest),
            "competitors": sum(1 for o in observation.offers if not o.is_ours),
            "undercut": undercut,
        },
        "source": {
            "kind": observation.source,
            "id": observation.ref,
            "observed_at": observation.observed_at.isoformat(),
        },
        "rule_source": rule_source,
        "settings": {"kill_switch": settings.kill_switch, "dry_run": settings.dry_run},
        "outcome": {
            "price_reason": decision.price_reason or decision.reason,
            "pause_until": _plain(decision.pause_until),
        },
    }
    return PriceDecision(
        tenant=tenant,
        listing=listing,
        rule=model_rule,
        rule_name=model_rule.name,
        rule_version=model_rule.version,
        rule_config=model_rule.config,
        trigger=trigger,
        action=decision.action,
        reason=decision.reason[:60],
        currency=state.currency,
        old_price=decision.old_price,
        target_price=decision.target_price,
        new_price=decision.new_price,
        submit=decision.submit,
        dry_run=rule.dry_run or settings.dry_run,
        kill_switch=settings.kill_switch,
        alerts=list(decision.alerts),
        inputs=inputs,
        trace=[step.to_dict() for step in decision.trace],
        observed_at=observation.observed_at,
        decided_at=now,
        decide_ms=elapsed_ms,
        notification_received_at=notification.received_at if notification is not None else None,
    )


def _update_guard_state(
    row: SkuPricing,
    decision: Decision,
    state: ListingState,
    undercuts: tuple[datetime, ...],
    today: Any,
    now: datetime,
) -> bool:
    """Write the guard state this decision leaves behind onto `row`; True when something changed."""
    before = (
        row.last_changed_at,
        row.day_open_date,
        row.day_open_price,
        list(row.undercut_times),
        row.paused_until,
        row.paused_reason,
    )
    if row.day_open_date != today and state.current_price is not None:
        # The SKU's first decision of the seller's day: its price now is the day's opening price.
        row.day_open_date, row.day_open_price = today, state.current_price
    if decision.submit:
        row.last_changed_at = now
    row.undercut_times = list(undercuts[-UNDERCUTS_KEPT:])
    if decision.action == PAUSE and decision.pause_until is not None:
        row.paused_until, row.paused_reason = decision.pause_until, decision.reason[:200]
    elif row.paused_until is not None and row.paused_until <= now:
        row.paused_until, row.paused_reason = None, ""
    changed = before != (
        row.last_changed_at,
        row.day_open_date,
        row.day_open_price,
        row.undercut_times,
        row.paused_until,
        row.paused_reason,
    )
    if changed:
        row.updated_at = now
    return changed


def _save_guard_state(tenant: Tenant, rows: list[SkuPricing]) -> None:
    """One UPDATE for the batch's guard state (Django's bulk_update builds a CASE per row and column,
    seconds of Python for thousands of SKUs)."""
    values = [
        {
            "id": row.pk,
            "last_changed_at": _plain(row.last_changed_at),
            "day_open_date": _plain(row.day_open_date),
            "day_open_price": _plain(row.day_open_price),
            "undercut_times": [moment.isoformat() for moment in row.undercut_times],
            "paused_until": _plain(row.paused_until),
            "paused_reason": row.paused_reason,
            "updated_at": _plain(row.updated_at),
        }
        for row in rows
    ]
    table = SkuPricing._meta.db_table
    sql = f"""
        UPDATE {table} AS p SET
            last_changed_at = v.last_changed_at, day_open_date = v.day_open_date,
            day_open_price = v.day_open_price, undercut_times = v.undercut_times,
            paused_until = v.paused_until, paused_reason = v.paused_reason, updated_at = v.updated_at
        FROM jsonb_to_recordset(%s::jsonb) AS v(
            id bigint, last_changed_at timestamptz, day_open_date date, day_open_price numeric,
            undercut_times timestamptz[], paused_until timestamptz, paused_reason text, updated_at timestamptz
        )
        WHERE p.tenant_id = %s AND p.id = v.id
    """  # noqa: S608 - the table name is ours, every value is a parameter
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(values), tenant.pk])


def _queue_submissions(
    tenant: Tenant, decisions: list[PriceDecision], now: datetime
) -> list[PriceSubmission]:
    """Supersede what a newer price or a pause replaces, queue the new prices, wake the sender."""
    superseding = sorted({d.listing_id for d in decisions if d.submit or d.action == PAUSE})
    if superseding:
        PriceSubmission.objects.filter(
            listing_id__in=superseding, status=PriceSubmission.Status.QUEUED
        ).update(
            status=PriceSubmission.Status.SUPERSEDED,
            finished_at=now,
            error="Replaced by a newer decision.",
            updated_at=now,
        )
    submissions = [
        PriceSubmission(
            tenant=tenant,
            decision=d,
            listing_id=d.listing_id,
            channel=PriceSubmission.Channel.LISTINGS_PATCH,
            price=d.new_price,
            currency=d.currency,
            status=PriceSubmission.Status.QUEUED,
            queued_at=now,
        )
        for d in decisions
        if d.submit and d.new_price is not None
    ]
    if submissions:
        PriceSubmission.objects.bulk_create(submissions)
        enqueue_named(SEND_SUBMISSIONS_TASK, tenant=tenant)
    return submissions


# --- alerts ----------------------------------------------------------------------------------------------

ALERT_WORDS = {
    "price_war": "Price war: competitors keep undercutting; repricing of this SKU is paused",
    "anomaly": "Unusually large price move held for your review",
    "out_of_bounds": "Current price is outside your min/max and the limits cannot bring it back",
}


def _raise_alerts(tenant: Tenant, alerts: list[tuple[Listing, PriceDecision]]) -> None:
    """Audit each alert not already audited for its SKU within `ALERT_REPEAT_SECONDS` and, after commit,
    email them to the people who handle automation (the decisions keep every occurrence). The audit log
    is the memory: it is in this transaction, so a rolled-back run leaves nothing that would silence the
    next one, and two alerts in one transaction are one message."""
    since = timezone.now() - timedelta(seconds=ALERT_REPEAT_SECONDS)
    actions = {f"repricing.alert.{alert}" for _, record in alerts for alert in record.alerts}
    targets = {str(listing.public_id) for listing, _ in alerts}
    already = set(
        AuditEvent.objects.filter(
            action__in=actions, target_id__in=targets, created_at__gte=since
        ).values_list("action", "target_id")
    )
    fresh: list[tuple[Listing, PriceDecision, str]] = []
    for listing, record in alerts:
        for alert in record.alerts:
            key = (f"repricing.alert.{alert}", str(listing.public_id))
            if key in already:
                continue
            already.add(key)
            audit_record(
                actor=None,
                action=key[0],
                target=listing,
                target_label=listing.sku,
                changes={
                    "decision": str(record.public_id),
                    "reason": record.reason,
                    "old_price": _plain(record.old_price),
                    "target_price": _plain(record.target_price),
                },
            )
            fresh.append((listing, record, alert))
    if fresh:
        transaction.on_commit(lambda: _send_alerts(tenant, fresh))


def alert_recipients(tenant: Tenant) -> list[User]:
    """Active members who may change automation and did not turn automation alerts off."""
    roles = [role for role, allowed in ROLE_PERMISSIONS.items() if Permission.CHANGE_AUTOMATION in allowed]
    members = Membership.objects.filter(tenant=tenant, role__in=roles, user__is_active=True).select_related(
        "user"
    )
    return [
        m.user
        for m in members.order_by("user__email")
        if m.user.notification_preferences.get("automation_alerts", True)
    ]


def _send_alerts(tenant: Tenant, fresh: list[tuple[Listing, PriceDecision, str]]) -> None:
    lines = []
    for listing, record, alert in fresh:
        words = ALERT_WORDS.get(alert, alert.replace("_", " "))
        lines.append(
            f"- {listing.sku} ({listing.asin}, {listing.marketplace_id}): {words}. "
            f"Price {record.old_price} {record.currency}, target {record.target_price}."
        )
    recipients = [user.email for user in alert_recipients(tenant)]
    if not recipients:
        return
    subject = f"Repricing: {len(lines)} alert{'s' if len(lines) != 1 else ''} for {tenant.name} need a look"
    body = (
        "SellerPilot's repricer held or paused these SKUs:\n\n"
        + "\n".join(lines)
        + "\n\nOpen Repricing in your dashboard to see each decision and why it was made.\n"
        "You get this because automation alerts are on in your notification preferences.\n"
    )
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
    except Exception:  # the decisions are stored; a mail server hiccup must not fail the run
        logger.exception("repricing: could not send the alert email for tenant %s", tenant.pk)


# --- reprice now -----------------------------------------------------------------------------------------


@transaction.atomic
def reprice_now(listings: Iterable[Listing], *, actor: User | None, actor_role: str) -> JobRun:
    """The seller's "reprice now" for one SKU or a selection: refresh their offers and reprice them in
    the background (`repricing.reprice_now`). Returns the run (its progress and counts fill in)."""
    if not role_allows(actor_role, Permission.CHANGE_AUTOMATION):
        raise RepricingError(
            "Your role does not allow changing repricing.", code="permission_denied", status=403
        )
    chosen: dict[int, Listing] = {}
    for listing in listings:
        chosen.setdefault(listing.pk, listing)
    if not chosen:
        raise RepricingError("Choose at least one SKU to reprice.", field="listings")
    if len(chosen) > REPRICE_NOW_MAX_SKUS:
        raise RepricingError(
            f"Reprice at most {REPRICE_NOW_MAX_SKUS} SKUs at once (you chose {len(chosen)}).",
            field="listings",
        )
    tenant = require_tenant()
    selected = sorted(chosen.values(), key=lambda li: li.pk)
    run = JobRun.objects.create(
        kind=REPRICE_NOW_KIND,
        started_at=timezone.now(),
        triggered_by="user",
        progress_total=len(selected),
        counts={},
    )
    audit_record(
        actor=actor,
        action="repricing.reprice_now",
        target=run,
        target_label=f"Reprice now: {len(selected)} SKU{'s' if len(selected) != 1 else ''}",
        changes={"skus": [li.sku for li in selected[:50]], "count": len(selected)},
    )
    enqueue_named(
        REPRICE_NOW_TASK,
        tenant=tenant,
        run_id=str(run.public_id),
        listing_ids=",".join(str(li.public_id) for li in selected),
    )
    return run
