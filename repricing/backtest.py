"""Backtest: a rule (saved, or an edited configuration not yet saved) replayed over the stored offer
history of some SKUs for a period, side by side with what happened.

`backtest_create` checks the request (the rule parses, the SKUs are this company's, the period has
offer history) and queues the `repricing.backtest_run` job; `backtest_run` replays and stores the
result on the `Backtest` row, with progress on it and on its `JobRun`.

The replay (`SkuReplay`, pure: engine inputs in, numbers out) walks one SKU's `OfferSnapshot`s in time
order through the real engine (`repricing.engine.decide`) and keeps, between observations, the state
the live pipeline keeps (repricing/pipeline.py): the simulated price, the last change, the day's
opening price in the company's timezone, the competitor undercuts within the price-war window (an
observation whose lowest competing landed price is below ours and below the previous observation's),
the pause the price-war breaker set, and the Buy Box share of the last 20 observations.

Assumptions, shown to the seller on the result page:

- The market is replayed as observed: competitors do not react to our simulated price.
- Our offer in each snapshot is replaced by the simulated one. Whether we would have held the Buy Box
  is estimated: a competitor's Buy Box is ours when our landed price is strictly below it; a Buy Box we
  did hold stays ours when we are not dearer than the price that held it, or than the lowest competitor.
- The SKU's bounds are its current min and max price; the rule runs live (its dry-run flag, the kill
  switch and the company's dry run are ignored: the question is what it would have done).
- Sales velocity and stock age are unknown for past moments, so those adjustments skip themselves.
- A decision takes effect at once: the "would have been" price at an observation is the price after
  the rule's decision on it. "Actual" is our offer in the snapshot, else the last price the live
  repricer sent before it (PriceDecision), else the previous actual price.

Stored: counts for every observation; per SKU a price series of at most `MAX_POINTS` points (evenly
sampled beyond that) for at most `MAX_SKU_RESULTS` SKUs; the summary covers every SKU.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Permission, role_allows
from amazon.models import Listing, OfferSnapshot, SellerConnection
from config.celery import app
from repricing.bounds_import import visible_listings
from repricing.engine import History, ListingState, Offer, Rule, decide
from repricing.engine.amazon_offers import OfferFormatError, offers_from_pricing
from repricing.engine.money import quantum
from repricing.engine.types import CHANGE, PAUSE
from repricing.models import Backtest, PriceDecision, RepricingRule, SkuPricing
from repricing.selectors import repricing_settings
from repricing.services import RepricingError, rule_config_validate
from tenants.context import require_tenant, tenant_context
from tenants.jobs import TenantTask, enqueue, job_run

logger = logging.getLogger(__name__)

JOB_KIND = "repricing.backtest"
#: Chart points kept per SKU (the counts cover every observation).
MAX_POINTS = 400
#: SKUs whose series are stored (the summary covers all of them).
MAX_SKU_RESULTS = 500
#: SKUs replayed per transaction (progress is committed between batches).
BATCH_SKUS = 10
#: The Buy Box share is over this many newest observations, as in the live pipeline.
BUY_BOX_SHARE_DEPTH = 20
UNDERCUTS_KEPT = 200
BACKTEST_SOFT_TIME_LIMIT = 30 * 60


def _require(actor_role: str) -> None:
    if not role_allows(actor_role, Permission.CHANGE_AUTOMATION):
        raise RepricingError(
            "Your role does not allow running backtests.", code="permission_denied", status=403
        )


# --- The pure replay ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One stored look at the market, as the replay needs it."""

    at: datetime
    offers: tuple[Offer, ...]
    #: Our item price and shipping as they were (our offer in the snapshot, else the last price sent).
    actual_price: Decimal | None
    actual_shipping: Decimal
    actually_held_buy_box: bool
    #: The Buy Box landed price from Amazon's summary, when no offer is marked as holding it.
    summary_buy_box_landed: Decimal | None = None


def _landed(price: Decimal | None, shipping: Decimal) -> Decimal | None:
    return None if price is None else price + shipping


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


@dataclass
class SkuReplay:
    """Replays one SKU's observations (in time order) through the engine, keeping the live pipeline's
    state between them. Feed `step()`, read `result()`."""

    listing: ListingState
    rule: Rule
    zone: ZoneInfo
    price: Decimal | None = None
    last_change_at: datetime | None = None
    day_open_date: date | None = None
    day_open_price: Decimal | None = None
    undercuts: tuple[datetime, ...] = ()
    paused_until: datetime | None = None
    previous_lowest: Decimal | None = None
    held: deque[bool] = field(default_factory=lambda: deque(maxlen=BUY_BOX_SHARE_DEPTH))
    points: list[list[Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    difference_total: Decimal = Decimal(0)
    last_actual: Decimal | None = None

    def __post_init__(self) -> None:
        # What it would have done live: the rule's own dry run is not the question here.
        self.rule = dataclasses.replace(self.rule, dry_run=False)

    def _competitors(self, offers: Sequence[Offer]) -> list[Offer]:
        state = self.listing
        return [
            o
            for o in offers
            if not o.is_ours and o.condition == state.condition and o.currency == state.currency
        ]

    def step(self, observation: Observation) -> None:
        now = observation.at
        if self.price is None:
            self.price = observation.actual_price  # the replay starts from the price we really had
        if self.price is None:
            self.counts["no_price"] += 1
            return
        today = now.astimezone(self.zone).date()
        shipping = observation.actual_shipping
        competitors = self._competitors(observation.offers)
        lowest = min((o.landed for o in competitors), default=None)
        our_landed = self.price + shipping
        undercut = (
            lowest is not None
            and self.previous_lowest is not None
            and lowest < our_landed
            and lowest < self.previous_lowest
        )
        war = self.rule.guards.price_war
        window = war.window_seconds if war else 0
        undercuts = tuple(t for t in self.undercuts if window and t > now - timedelta(seconds=window))
        if undercut and window:
            undercuts = (*undercuts, now)
        self.undercuts = undercuts[-UNDERCUTS_KEPT:]
        if undercut:
            self.counts["undercuts"] += 1

        winner = min(
            (o for o in observation.offers if o.is_buy_box_winner and o.condition == self.listing.condition),
            key=lambda o: (o.landed, o.seller_id),
            default=None,
        )
        holds = self._would_hold(observation, winner, self.price, lowest)
        offers = self._market_with_us(observation, competitors, winner, holds)
        self.held.append(holds)
        history = History(
            now=now,
            last_change_at=self.last_change_at,
            day_open_price=self.day_open_price if self.day_open_date == today else None,
            undercut_times=self.undercuts,
            buy_box_share=sum(self.held) / len(self.held),
            paused_until=self.paused_until,
        )
        state = dataclasses.replace(self.listing, current_price=self.price, our_shipping=shipping)
        decision = decide(state, offers, self.rule, history)

        # The guard state this decision leaves behind, as repricing/pipeline.py keeps it.
        if self.day_open_date != today:
            self.day_open_date, self.day_open_price = today, self.price
        if decision.action == CHANGE and decision.new_price is not None:
            self.last_change_at = now
            self.price = decision.new_price
        if decision.action == PAUSE and decision.pause_until is not None:
            self.paused_until = decision.pause_until
        elif self.paused_until is not None and self.paused_until <= now:
            self.paused_until = None
        self.previous_lowest = lowest
        held_after = self._would_hold(observation, winner, self.price, lowest)
        self._record(
            observation, decision.action, decision.reason, decision.alerts, lowest, winner, held_after
        )

    def _would_hold(
        self, observation: Observation, winner: Offer | None, price: Decimal, lowest: Decimal | None
    ) -> bool:
        """Whether we would hold the Buy Box at `price` (the estimate in the module docstring)."""
        if winner is None:
            return False
        ours = price + observation.actual_shipping
        if winner.is_ours:
            actual = _landed(observation.actual_price, observation.actual_shipping)
            return (actual is not None and ours <= actual) or lowest is None or ours <= lowest
        return ours < winner.landed

    def _market_with_us(
        self, observation: Observation, competitors: list[Offer], winner: Offer | None, holds: bool
    ) -> list[Offer]:
        """The observed competitors, and our offer at the simulated price holding the Buy Box or not."""
        assert self.price is not None
        offers = [
            dataclasses.replace(o, is_buy_box_winner=False) if holds and o.is_buy_box_winner else o
            for o in competitors
        ]
        if winner is not None and winner.is_ours and not holds and offers:
            # We lose a Buy Box we held: the cheapest competitor is taken to win it.
            cheapest = min(offers, key=lambda o: (o.landed, o.seller_id))
            offers = [dataclasses.replace(o, is_buy_box_winner=True) if o is cheapest else o for o in offers]
        ours = [o for o in observation.offers if o.is_ours]
        template = (
            ours[0]
            if ours
            else Offer(
                seller_id="",
                price=self.price,
                currency=self.listing.currency,
                condition=self.listing.condition,
                fulfillment=self.listing.fulfillment,
                is_ours=True,
            )
        )
        offers.append(
            dataclasses.replace(
                template, price=self.price, shipping=observation.actual_shipping, is_buy_box_winner=holds
            )
        )
        return offers

    def _record(
        self,
        observation: Observation,
        action: str,
        reason: str,
        alerts: tuple[str, ...],
        lowest: Decimal | None,
        winner: Offer | None,
        held_after: bool,
    ) -> None:
        assert self.price is not None
        counts = self.counts
        counts["observations"] += 1
        counts[action] += 1
        self.reasons[reason] += 1
        for alert in alerts:
            self.alerts[alert] += 1
        shipping = observation.actual_shipping
        would = self.price + shipping
        actual_price = observation.actual_price
        actual = _landed(actual_price, shipping)
        if actual_price is not None and self.last_actual is not None and actual_price != self.last_actual:
            counts["actual_changes"] += 1
        if actual_price is not None:
            self.last_actual = actual_price
        state = self.listing
        if state.min_price is not None and self.price == state.min_price:
            counts["at_min"] += 1
        if state.max_price is not None and self.price == state.max_price:
            counts["at_max"] += 1
        # The Buy Box as it was: a competitor's, ours at our actual price, or Amazon's summary price.
        if winner is not None:
            buy_box = actual if winner.is_ours else winner.landed
        else:
            buy_box = observation.summary_buy_box_landed
        if buy_box is not None:
            counts["with_buy_box"] += 1
            counts["would_at_buy_box_price"] += int(would <= buy_box)
            if actual is not None:
                counts["actual_at_buy_box_price"] += int(actual <= buy_box)
        counts["would_hold_buy_box"] += int(held_after)
        counts["actual_held_buy_box"] += int(observation.actually_held_buy_box)
        counts["would_lowest"] += int(lowest is None or would <= lowest)
        if actual is not None:
            counts["with_actual"] += 1
            counts["actual_lowest"] += int(lowest is None or actual <= lowest)
            self.difference_total += would - actual
        self.points.append(
            [
                observation.at.isoformat(timespec="seconds"),
                self._text(actual),
                self._text(would),
                self._text(buy_box),
                self._text(lowest),
                action,
            ]
        )

    def result(self) -> dict[str, Any]:
        counts = self.counts
        with_actual = counts["with_actual"]
        return {
            "observations": counts["observations"],
            "changes": counts[CHANGE],
            "holds": counts["hold"],
            "pauses": counts[PAUSE],
            "alerts": sum(self.alerts.values()),
            "alerts_by_kind": dict(sorted(self.alerts.items())),
            "at_min": counts["at_min"],
            "at_max": counts["at_max"],
            "undercuts": counts["undercuts"],
            "actual_changes": counts["actual_changes"],
            "no_price": counts["no_price"],
            "reasons": dict(self.reasons.most_common(8)),
            "would_lowest_pct": _pct(counts["would_lowest"], counts["observations"]),
            "actual_lowest_pct": _pct(counts["actual_lowest"], with_actual),
            "would_at_buy_box_price_pct": _pct(counts["would_at_buy_box_price"], counts["with_buy_box"]),
            "actual_at_buy_box_price_pct": _pct(counts["actual_at_buy_box_price"], counts["with_buy_box"]),
            "would_hold_buy_box_pct": _pct(counts["would_hold_buy_box"], counts["observations"]),
            "actual_held_buy_box_pct": _pct(counts["actual_held_buy_box"], counts["observations"]),
            "average_difference": None
            if not with_actual
            else str((self.difference_total / with_actual).quantize(Decimal("0.01"))),
            "last_would_price": self._text(self.price),
            "last_actual_price": self._text(self.last_actual),
            "no_bounds": self.listing.min_price is None or self.listing.max_price is None,
            "counts": dict(counts),
            "difference_total": str(self.difference_total),
        }

    def _text(self, value: Decimal | None) -> str | None:
        """An amount as text in the currency's minor units (Amazon's JSON has 21.0 for 21.00)."""
        return None if value is None else str(value.quantize(quantum(self.listing.currency)))

    def sampled_points(self, limit: int = MAX_POINTS) -> list[list[Any]]:
        points = self.points
        if len(points) <= limit:
            return points
        stride = len(points) / (limit - 1)
        picked = [points[round(i * stride)] for i in range(limit - 1)]
        return [*picked, points[-1]]


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Across SKUs: totals and shares over every observation, average price difference."""
    total: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    difference = Decimal(0)
    for result in results:
        total.update(result["counts"])
        alerts.update(result["alerts_by_kind"])
        difference += Decimal(result["difference_total"])
    observations, with_actual, with_buy_box = (
        total["observations"],
        total["with_actual"],
        total["with_buy_box"],
    )
    return {
        "skus": len(results),
        "skus_observed": sum(1 for r in results if r["observations"]),
        "skus_without_bounds": sum(1 for r in results if r["no_bounds"]),
        "observations": observations,
        "changes": total[CHANGE],
        "holds": total["hold"],
        "pauses": total[PAUSE],
        "alerts": sum(alerts.values()),
        "alerts_by_kind": dict(sorted(alerts.items())),
        "at_min": total["at_min"],
        "at_max": total["at_max"],
        "undercuts": total["undercuts"],
        "actual_changes": total["actual_changes"],
        "would_lowest_pct": _pct(total["would_lowest"], observations),
        "actual_lowest_pct": _pct(total["actual_lowest"], with_actual),
        "would_at_buy_box_price_pct": _pct(total["would_at_buy_box_price"], with_buy_box),
        "actual_at_buy_box_price_pct": _pct(total["actual_at_buy_box_price"], with_buy_box),
        "would_hold_buy_box_pct": _pct(total["would_hold_buy_box"], observations),
        "actual_held_buy_box_pct": _pct(total["actual_held_buy_box"], observations),
        "average_difference": None
        if not with_actual
        else str((difference / with_actual).quantize(Decimal("0.01"))),
    }


# --- Loading the history ----------------------------------------------------------------------------------


def _listing_state(listing: Listing, pricing: SkuPricing | None) -> ListingState:
    return ListingState(
        sku=listing.sku,
        asin=listing.asin,
        marketplace_id=listing.marketplace_id,
        currency=listing.currency or "USD",
        condition=listing.item_condition.lower(),
        fulfillment="FBA" if listing.fulfillment_channel == Listing.FulfillmentChannel.AFN else "FBM",
        current_price=None,
        min_price=pricing.min_price if pricing else None,
        max_price=pricing.max_price if pricing else None,
    )


def _sent_prices(listing_ids: Sequence[int], until: datetime) -> dict[int, list[tuple[datetime, Decimal]]]:
    """Listing id -> the prices the live repricer sent (time order), for moments with no offer of ours."""
    sent: dict[int, list[tuple[datetime, Decimal]]] = {}
    rows = (
        PriceDecision.objects.filter(listing_id__in=listing_ids, submit=True, decided_at__lte=until)
        .exclude(new_price=None)
        .order_by("listing_id", "decided_at", "id")
        .values_list("listing_id", "decided_at", "new_price")
    )
    for listing_id, decided_at, price in rows.iterator(chunk_size=5000):
        sent.setdefault(listing_id, []).append((decided_at, price))
    return sent


def _observations(
    listing: Listing,
    rows: Iterator[tuple[Any, ...]],
    our_seller_id: str,
    sent: list[tuple[datetime, Decimal]],
    counts: Counter[str],
) -> Iterator[Observation]:
    """A SKU's snapshots as the replay's observations (unreadable offers are skipped and counted)."""
    condition = listing.item_condition
    cursor = 0
    known: tuple[datetime, Decimal] | None = None  # the latest price of ours we know of, and when
    shipping = Decimal(0)
    for observed_at, raw_offers, held, summary_landed in rows:
        try:
            offers = offers_from_pricing(list(raw_offers or []), our_seller_id, item_condition=condition)
        except OfferFormatError:
            counts["unreadable_snapshots"] += 1
            continue
        while cursor < len(sent) and sent[cursor][0] <= observed_at:
            if known is None or sent[cursor][0] >= known[0]:
                known = sent[cursor]
            cursor += 1
        ours = [o for o in offers if o.is_ours and o.condition == condition.lower()]
        if len(ours) == 1:
            known, shipping = (observed_at, ours[0].price), ours[0].shipping
        price = None if known is None else known[1]
        yield Observation(
            at=observed_at,
            offers=tuple(offers),
            actual_price=price,
            actual_shipping=shipping,
            actually_held_buy_box=bool(held),
            summary_buy_box_landed=summary_landed,
        )


def _grouped(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[int, Iterator[tuple[Any, ...]]]]:
    """(listing id, its rows) from rows ordered by listing id, without holding more than one row."""
    pending: list[tuple[Any, ...]] = []
    source = iter(rows)

    def take(listing_id: int, first: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        yield first[1:]
        for row in source:
            if row[0] != listing_id:
                pending.append(row)
                return
            yield row[1:]

    row = next(source, None)
    while row is not None:
        listing_id = row[0]
        group = take(listing_id, row)
        yield listing_id, group
        for _ in group:  # the consumer stopped early: skip the rest of this SKU
            pass
        row = pending.pop() if pending else None


def replay_batch(
    listings: Sequence[Listing],
    rule: Rule,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    counts: Counter[str],
) -> list[tuple[Listing, SkuReplay]]:
    """Replay a batch of SKUs from the database (inside the tenant's transaction), streaming their
    snapshots in (listing, time) order so that memory holds one snapshot at a time."""
    ids = [listing.pk for listing in listings]
    by_id = {listing.pk: listing for listing in listings}
    pricing = {row.listing_id: row for row in SkuPricing.objects.filter(listing_id__in=ids)}
    sellers = dict(
        SellerConnection.objects.filter(pk__in={li.connection_id for li in listings}).values_list(
            "pk", "selling_partner_id"
        )
    )
    sent = _sent_prices(ids, end)
    replays = {
        listing.pk: SkuReplay(_listing_state(listing, pricing.get(listing.pk)), rule, zone)
        for listing in listings
    }
    rows = (
        OfferSnapshot.objects.filter(listing_id__in=ids, observed_at__gte=start, observed_at__lt=end)
        .order_by("listing_id", "observed_at", "id")
        .values_list("listing_id", "observed_at", "offers", "we_hold_buy_box", "buy_box_landed_price")
        .iterator(chunk_size=2000)
    )
    for listing_id, group in _grouped(rows):
        listing = by_id[listing_id]
        replay = replays[listing_id]
        our_seller_id = sellers.get(listing.connection_id, "")
        for observation in _observations(listing, group, our_seller_id, sent.get(listing_id, []), counts):
            replay.step(observation)
    return [(by_id[i], replays[i]) for i in ids]


# --- Creating and running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive


def period_of(first_day: date, last_day: date, zone: ZoneInfo) -> Period:
    """Whole days in the company's timezone, `last_day` included."""
    if last_day < first_day:
        raise RepricingError("The period ends before it starts.", field="end")
    days = (last_day - first_day).days + 1
    limit = settings.REPRICING_BACKTEST_MAX_DAYS
    if days > limit:
        raise RepricingError(f"A backtest covers at most {limit} days (this is {days}).", field="end")
    today = timezone.now().astimezone(zone).date()
    if first_day > today:
        raise RepricingError("The period starts in the future: there is no history yet.", field="start")
    start = datetime.combine(first_day, day_time(0), tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), day_time(0), tzinfo=zone)
    return Period(start, end)


def selected_listings(selection: dict[str, Any], user: User | None) -> Any:
    """The listings a selection names, of those `user` may see (a queryset, in the current tenant)."""
    listings = visible_listings(user)
    kind = selection.get("kind", "all")
    if kind == "tag":
        ids = SkuPricing.objects.filter(tags__contains=[selection["tag"]]).values("listing_id")
        return listings.filter(pk__in=ids)
    if kind == "skus":
        return listings.filter(sku__in=selection["skus"])
    return listings.exclude(status=Listing.Status.REMOVED)


def _selection(skus: Sequence[str] | None, tag: str | None, user: User | None) -> dict[str, Any]:
    if skus and tag:
        raise RepricingError("Choose SKUs or a tag, not both.", field="tag")
    if tag is not None and tag.strip():
        tag = tag.strip()
        if not SkuPricing.objects.filter(tags__contains=[tag]).exists():
            raise RepricingError(f"No SKU has the tag “{tag}”.", code="unknown_tag", field="tag")
        return {"kind": "tag", "tag": tag}
    if skus:
        wanted = sorted({sku.strip() for sku in skus if sku and sku.strip()})
        if not wanted:
            raise RepricingError("Name at least one SKU.", field="skus")
        found = set(visible_listings(user).filter(sku__in=wanted).values_list("sku", flat=True))
        unknown = [sku for sku in wanted if sku not in found]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise RepricingError(
                f"Unknown SKU{'s' if len(unknown) > 1 else ''}: {shown}.", code="unknown_sku", field="skus"
            )
        return {"kind": "skus", "skus": wanted}
    return {"kind": "all"}


def _rule_choice(rule: RepricingRule | None, config: Any) -> tuple[dict[str, Any], str, int | None]:
    """(canonical configuration, label, version) for a saved rule, an edit of one, or a new one."""
    if rule is None and config is None:
        raise RepricingError("Choose a rule, or give a rule configuration to try.", field="rule")
    if config is not None:
        canonical = rule_config_validate(config)
        if rule is None:
            return canonical, "Unsaved rule", None
        if canonical == rule.config:
            return canonical, rule.name, rule.version
        return canonical, f"{rule.name} (edited)", None
    assert rule is not None
    return rule_config_validate(rule.config), rule.name, rule.version


@transaction.atomic
def backtest_create(
    *,
    actor: User | None,
    actor_role: str,
    start: date,
    end: date,
    rule: RepricingRule | None = None,
    config: Any = None,
    skus: Sequence[str] | None = None,
    tag: str | None = None,
    name: str = "",
) -> Backtest:
    """Check a backtest request and queue it. Refusals (`RepricingError`) store nothing."""
    _require(actor_role)
    canonical, label, version = _rule_choice(rule, config)
    zone = ZoneInfo(repricing_settings().timezone or "UTC")
    period = period_of(start, end, zone)
    selection = _selection(skus, tag, actor)
    listings = selected_listings(selection, actor)
    count = listings.count()
    limit = settings.REPRICING_BACKTEST_MAX_SKUS
    if count > limit:
        raise RepricingError(
            f"A backtest takes at most {limit:,} SKUs ({count:,} chosen): choose a tag or a selection.",
            field="skus",
        )
    observations = OfferSnapshot.objects.filter(
        listing__in=listings, observed_at__gte=period.start, observed_at__lt=period.end
    ).count()
    if not observations:
        raise RepricingError(
            "There is no offer history for these SKUs in this period. Offer snapshots are taken every "
            "few minutes once an Amazon account is connected: run the offers sync first, or choose "
            "another period.",
            code="no_history",
            field="start",
        )
    most = settings.REPRICING_BACKTEST_MAX_OBSERVATIONS
    if observations > most:
        raise RepricingError(
            f"This would replay {observations:,} offer snapshots; a backtest takes at most {most:,}. "
            "Choose fewer SKUs (a tag or a selection) or a shorter period.",
            code="too_much_history",
            field="skus",
        )
    name = (name or "").strip()[:200] or f"{label}, {start:%b %-d} to {end:%b %-d, %Y}"
    backtest = Backtest.objects.create(
        name=name,
        rule=rule,
        rule_name=label,
        rule_version=version,
        rule_config=canonical,
        selection=selection,
        period_start=period.start,
        period_end=period.end,
        progress_total=count,
        created_by=actor,
    )
    enqueue(backtest_run_task, tenant=require_tenant(), backtest_id=str(backtest.public_id))
    return backtest


def _save_progress(backtest_pk: int, done: int, total: int) -> None:
    with tenant_context(require_tenant()):
        Backtest.objects.filter(pk=backtest_pk).update(
            progress_done=done, progress_total=total, updated_at=timezone.now()
        )


def backtest_run(*, backtest_id: str | UUID) -> None:
    """Run a queued backtest (a non-atomic job: progress is committed per batch of SKUs)."""
    tenant = require_tenant()
    with tenant_context(tenant):
        backtest = (
            Backtest.objects.select_related("created_by")
            .filter(public_id=backtest_id, status=Backtest.Status.QUEUED)
            .first()
        )
        if backtest is None:
            return
        backtest.status = Backtest.Status.RUNNING
        backtest.started_at = timezone.now()
        backtest.save(update_fields=["status", "started_at", "updated_at"])
        zone = ZoneInfo(repricing_settings().timezone or "UTC")
    try:
        with job_run(JOB_KIND, triggered_by="user") as run:
            with tenant_context(tenant):
                Backtest.objects.filter(pk=backtest.pk).update(job_run=run.run)
                listings = list(
                    selected_listings(backtest.selection, backtest.created_by).order_by(
                        "sku", "marketplace_id", "id"
                    )
                )
            rule = Rule.from_dict(backtest.rule_config)
            total = len(listings)
            run.progress(0, total)
            _save_progress(backtest.pk, 0, total)
            started = time.perf_counter()
            counts: Counter[str] = Counter()
            results: list[dict[str, Any]] = []
            stored = 0
            for index in range(0, total, BATCH_SKUS):
                batch = listings[index : index + BATCH_SKUS]
                with tenant_context(tenant):
                    replays = replay_batch(
                        batch, rule, zone, backtest.period_start, backtest.period_end, counts
                    )
                for listing, replay in replays:
                    result = replay.result()
                    result.update(
                        listing=str(listing.public_id),
                        sku=listing.sku,
                        asin=listing.asin,
                        marketplace_id=listing.marketplace_id,
                        currency=listing.currency,
                        min_price=None if replay.listing.min_price is None else str(replay.listing.min_price),
                        max_price=None if replay.listing.max_price is None else str(replay.listing.max_price),
                    )
                    if result["observations"] and stored < MAX_SKU_RESULTS:
                        result["points"] = replay.sampled_points()
                        stored += 1
                    results.append(result)
                done = min(index + BATCH_SKUS, total)
                run.progress(done)
                _save_progress(backtest.pk, done, total)
            elapsed = time.perf_counter() - started
            summary = summarise(results)
            summary.update(
                seconds=round(elapsed, 3),
                observations_per_second=round(summary["observations"] / elapsed) if elapsed > 0 else None,
                unreadable_snapshots=counts["unreadable_snapshots"],
                skus_stored=stored,
            )
            observed = [r for r in results if r["observations"]]
            for result in observed:
                del result["counts"], result["difference_total"]
            with tenant_context(tenant):
                Backtest.objects.filter(pk=backtest.pk).update(
                    status=Backtest.Status.SUCCEEDED,
                    summary=summary,
                    results=observed[:MAX_SKU_RESULTS],
                    finished_at=timezone.now(),
                    updated_at=timezone.now(),
                )
            run.count("skus", total)
            run.count("observations", summary["observations"])
            run.count("would_change", summary["changes"])
    except Exception as error:
        with tenant_context(tenant):
            Backtest.objects.filter(pk=backtest.pk).update(
                status=Backtest.Status.FAILED,
                error=f"{type(error).__name__}: {error}"[:2000],
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
        raise


class BacktestTask(TenantTask):
    abstract = True
    atomic = False


@app.task(
    base=BacktestTask,
    name="repricing.backtest_run",
    ignore_result=True,
    soft_time_limit=BACKTEST_SOFT_TIME_LIMIT,
    time_limit=BACKTEST_SOFT_TIME_LIMIT + 60,
)
def backtest_run_task(*, backtest_id: str) -> None:
    backtest_run(backtest_id=backtest_id)
