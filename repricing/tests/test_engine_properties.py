"""Properties of the engine over generated inputs (hypothesis): whatever the offers, rule and history,
`decide` does not raise, a submitted (or proposed) price is a whole cent inside [min, max] and within
the step and daily limits (checked against the limits themselves, not the engine's arithmetic), the
kill switch and dry-run stop every submission without changing the decision, the decision does not
depend on the order of the offers, the filters' fast loop agrees with their one-offer explanation,
rules round-trip, and the computed min price is the cheapest price meeting its target."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repricing.engine import History, ListingState, Offer, Rule, computed_min_price, decide
from repricing.engine.filters import exclusion, select

D = Decimal
CENT = D("0.01")
# No example database: the working tree stays clean; a failure prints the example that reproduces it.
SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def money(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(D(low), D(high), places=2, allow_nan=False, allow_infinity=False)


def percent(low: str = "0.1", high: str = "50") -> st.SearchStrategy[str]:
    return st.decimals(D(low), D(high), places=1).map(str)


SELLERS = st.sampled_from(["A", "B", "C", "D", "ATVPDKIKX0DER", "ME"])
moments = st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31), timezones=st.just(UTC))

offers_strategy = st.lists(
    st.builds(
        Offer,
        seller_id=SELLERS,
        price=money("0.01", "120"),
        shipping=st.one_of(st.just(D("0")), money("0", "15")),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR"]),
        condition=st.sampled_from(["new", "new", "new", "used"]),
        fulfillment=st.sampled_from(["FBA", "FBM"]),
        is_buy_box_winner=st.booleans(),
        feedback_rating=st.none() | st.floats(0, 100),
        feedback_count=st.none() | st.integers(0, 10_000),
        ships_from=st.none() | st.sampled_from(["US", "CN", "DE"]),
        handling_hours_max=st.none() | st.integers(0, 200),
        is_amazon=st.booleans(),
        is_ours=st.booleans(),
    ),
    max_size=12,
)


@st.composite
def listings(draw: st.DrawFn) -> ListingState:
    minimum = draw(money("0.01", "80"))
    maximum = draw(money(str(minimum), "120"))
    bounds = draw(st.sampled_from(["both"] * 8 + ["none", "swapped"]))
    return ListingState(
        sku="SKU",
        asin="B0",
        marketplace_id="ATVPDKIKX0DER",
        currency="USD",
        condition="new",
        fulfillment=draw(st.sampled_from(["FBA", "FBM"])),
        # Mostly near the bounds, sometimes outside them (a min raised after the last change), rarely none.
        current_price=draw(
            rarely_none(money(str(max(CENT, minimum * D("0.8")).quantize(CENT)), str(maximum * D("1.2"))))
        ),
        our_shipping=draw(st.one_of(st.just(D("0")), money("0", "10"))),
        min_price=None if bounds == "none" else (maximum if bounds == "swapped" else minimum),
        max_price=None if bounds == "none" else (minimum if bounds == "swapped" else maximum),
        units_sold_7d=draw(st.none() | st.integers(0, 100)),
        days_of_cover=draw(st.none() | st.floats(0, 400)),
        aged_units=draw(st.none() | st.integers(0, 50)),
    )


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def rarely_none(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """None one time in ten (``st.none() | s`` would make it one in two)."""
    return st.integers(0, 9).flatmap(lambda n: st.none() if n == 0 else strategy)


@st.composite
def limits(draw: st.DrawFn) -> dict[str, str]:
    which = draw(st.sampled_from(["amount", "percent", "both"]))
    limit = {}
    if which in ("amount", "both"):
        limit["amount"] = str(draw(money("0.01", "10")))
    if which in ("percent", "both"):
        limit["percent"] = draw(percent("0.1", "40"))
    return limit


@st.composite
def rule_dicts(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["buy_box", "lowest", "lowest_fba", "named_competitors", "current"]))
    mode = "match" if kind == "current" else draw(st.sampled_from(["match", "beat", "above"]))
    strategy: dict[str, Any] = {
        "kind": kind,
        "mode": mode,
        "when_no_buy_box": draw(st.sampled_from(["lowest", "hold", "min", "max"])),
        "when_alone": draw(st.sampled_from(["hold", "min", "max"])),
    }
    if mode != "match":
        if draw(st.booleans()):
            strategy["amount"] = str(draw(money("0.01", "5")))
        else:
            strategy["percent"] = draw(percent("0.1", "20"))
    if kind == "named_competitors":
        strategy["competitors"] = draw(st.lists(SELLERS, min_size=1, max_size=3))
    data: dict[str, Any] = {"strategy": strategy, "dry_run": draw(st.booleans())}
    data["filters"] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "fulfillment": st.sampled_from(["any", "FBA"]),
                "min_feedback_rating": st.integers(0, 100),
                "min_feedback_count": st.integers(0, 1000),
                "ships_from": st.lists(st.sampled_from(["US", "DE"]), max_size=2),
                "max_handling_hours": st.integers(0, 100),
                "exclude_amazon": st.booleans(),
                "exclude_sellers": st.lists(st.sampled_from(["A", "B"]), max_size=1),
                "only_sellers": st.lists(st.sampled_from(["C", "D", "ATVPDKIKX0DER"]), max_size=2),
            },
        )
    )
    if draw(st.booleans()):
        probe: dict[str, Any] = {"when_sharing": draw(st.sampled_from(["hold", "probe"]))}
        probe["amount" if draw(st.booleans()) else "percent"] = draw(percent("0.1", "5"))
        data["buy_box_probe"] = probe
    if draw(st.booleans()):
        data["velocity"] = {
            "target_units_7d": draw(st.integers(0, 50)),
            "raise_percent": draw(percent("0", "10")),
            "lower_percent": draw(percent("0.1", "10")),
        }
    if draw(st.booleans()):
        data["inventory"] = {
            "low_days_of_cover": 10, "raise_percent": draw(percent()),
            "high_days_of_cover": 90, "lower_percent": draw(percent()),
            "aged_units_min": 5, "aged_lower_percent": draw(percent()),
        }  # fmt: skip
    if draw(st.booleans()):
        data["schedule"] = {
            "timezone": draw(st.sampled_from(["UTC", "America/New_York", "Asia/Tokyo"])),
            "entries": [
                {
                    "days": ["sat", "sun"],
                    "start": "06:00",
                    "end": "22:00",
                    "adjust_percent": draw(percent("-20", "20")),
                },
                {"days": ["wed"], "start": "23:00", "end": "02:00", "pause": True},
            ],
        }
    data["bounds"] = {"out_of_bounds": draw(st.sampled_from(["bound", "hold"]))}
    guards: dict[str, Any] = {}
    if draw(st.booleans()):
        guards["max_step"] = draw(limits())
    if draw(st.booleans()):
        guards["max_daily"] = draw(limits())
    if draw(st.booleans()):
        guards["cooldown_seconds"] = draw(st.integers(0, 3600))
    if draw(st.booleans()):
        guards["price_war"] = {
            "undercuts": draw(st.integers(1, 5)),
            "window_seconds": 3600,
            "pause_seconds": 600,
        }
    if draw(st.booleans()):
        guards["anomaly"] = {"percent": draw(percent("5", "90"))}
    data["guards"] = guards
    return data


@st.composite
def histories(draw: st.DrawFn) -> History:
    now = draw(moments)
    return History(
        now=now,
        last_change_at=draw(optional(st.integers(0, 7200).map(lambda s: now - timedelta(seconds=s)))),
        day_open_price=draw(optional(money("0.01", "150"))),
        undercut_times=tuple(
            draw(
                st.lists(st.integers(0, 7200), max_size=6).map(
                    lambda xs: [now - timedelta(seconds=s) for s in xs]
                )
            )
        ),
        buy_box_share=draw(optional(st.floats(0, 1))),
        paused_until=draw(
            st.none() | st.none() | st.integers(-600, 600).map(lambda s: now + timedelta(seconds=s))
        ),
    )


def within(move: Decimal, reference: Decimal, limit: Any) -> bool:
    """Is ``move`` (absolute) within the limit taken from ``reference``, by the rule's own numbers?"""
    if limit.amount is not None and move > limit.amount:
        return False
    return not (limit.percent is not None and move > reference * limit.percent / 100)


@SETTINGS
@given(
    listing=listings(),
    offers=offers_strategy,
    data=rule_dicts(),
    history=histories(),
    kill=st.booleans(),
    tenant_dry=st.booleans(),
)
def test_prices_stay_within_bounds_and_limits(
    listing: ListingState,
    offers: list[Offer],
    data: dict[str, Any],
    history: History,
    kill: bool,
    tenant_dry: bool,
) -> None:
    rule = Rule.from_dict(data)
    d = decide(listing, offers, rule, history, kill_switch=kill, tenant_dry_run=tenant_dry)

    assert d.action in ("change", "hold", "pause")
    assert d.old_price == listing.current_price
    assert d.submit == (d.action == "change" and not kill and not tenant_dry and not rule.dry_run)
    if kill or tenant_dry or rule.dry_run:
        assert not d.submit
    assert (d.pause_until is not None) == (d.action == "pause")
    if d.action != "change":
        assert d.new_price is None
        return
    new, current = d.new_price, listing.current_price
    assert new is not None and current is not None
    assert listing.min_price is not None and listing.max_price is not None
    assert listing.min_price <= new <= listing.max_price
    assert new == new.quantize(CENT) and new != current
    guards = rule.guards
    if guards.max_step is not None:
        assert within(abs(new - current), current, guards.max_step)
    if guards.max_daily is not None:
        opening = history.day_open_price if history.day_open_price is not None else current
        assert within(abs(new - opening), opening, guards.max_daily)
    # A change moves toward the target, never past it.
    assert d.target_price is not None
    bounded_target = min(max(d.target_price, listing.min_price), listing.max_price)
    assert (new - current) * (bounded_target - current) > 0
    assert abs(new - current) <= abs(bounded_target - current)


@SETTINGS
@given(listing=listings(), offers=offers_strategy, data=rule_dicts(), history=histories())
def test_kill_switch_stops_every_submission_and_changes_nothing_else(
    listing: ListingState, offers: list[Offer], data: dict[str, Any], history: History
) -> None:
    rule = Rule.from_dict(data)
    live = replace(rule, dry_run=False)
    normal = decide(listing, offers, live, history)
    killed = decide(listing, offers, rule, history, kill_switch=True, tenant_dry_run=True)
    dry = decide(listing, offers, live, history, tenant_dry_run=True)
    rule_dry = decide(listing, offers, replace(rule, dry_run=True), history)
    for stopped, step in ((killed, "kill_switch"), (dry, "dry_run"), (rule_dry, "dry_run")):
        assert not stopped.submit
        same = (stopped.action, stopped.new_price, stopped.target_price, stopped.alerts, stopped.pause_until)
        assert same == (
            normal.action,
            normal.new_price,
            normal.target_price,
            normal.alerts,
            normal.pause_until,
        )
        # Everything the seller sees is the same, plus one line saying why nothing was sent.
        assert stopped.trace[:-1] == normal.trace and stopped.trace[-1].code == step
        assert stopped.price_reason == normal.price_reason
        assert stopped.reason == (step if normal.submit else normal.reason)


@SETTINGS
@given(listing=listings(), offers=offers_strategy, data=rule_dicts(), history=histories(), seed=st.randoms())
def test_decision_does_not_depend_on_offer_order(
    listing: ListingState, offers: list[Offer], data: dict[str, Any], history: History, seed: Any
) -> None:
    rule = Rule.from_dict(data)
    shuffled = list(offers)
    seed.shuffle(shuffled)
    assert decide(listing, offers, rule, history) == decide(listing, shuffled, rule, history)


@SETTINGS
@given(listing=listings(), offers=offers_strategy, data=rule_dicts())
def test_select_agrees_with_exclusion(
    listing: ListingState, offers: list[Offer], data: dict[str, Any]
) -> None:
    filters = Rule.from_dict(data).filters
    selection = select(listing, offers, filters)
    comparable = [o for o in offers if o.currency == listing.currency and o.condition == listing.condition]
    assert selection.ours == [o for o in comparable if o.is_ours]
    assert selection.competitors == [o for o in comparable if not o.is_ours and exclusion(o, filters) is None]
    excluded = [exclusion(o, filters) for o in comparable if not o.is_ours]
    assert sum(selection.excluded.values()) == sum(1 for reason in excluded if reason is not None)


@SETTINGS
@given(data=rule_dicts())
def test_rules_round_trip(data: dict[str, Any]) -> None:
    rule = Rule.from_dict(data)
    assert Rule.from_dict(rule.to_dict()) == rule


@SETTINGS
@given(
    cost=money("0", "500"),
    fba=money("0", "30"),
    referral=st.decimals(D("0"), D("45"), places=1),
    margin=st.none() | st.decimals(D("0"), D("50"), places=1),
    roi=st.none() | st.decimals(D("0"), D("300"), places=1),
    minimum_fee=st.sampled_from([D("0"), D("0.30"), D("1.00")]),
)
def test_computed_min_price_is_the_cheapest_price_meeting_the_target(
    cost: Decimal,
    fba: Decimal,
    referral: Decimal,
    margin: Decimal | None,
    roi: Decimal | None,
    minimum_fee: Decimal,
) -> None:
    price = computed_min_price(
        cost,
        referral,
        fba,
        target_margin_percent=margin,
        target_roi_percent=roi,
        referral_min_fee=minimum_fee,
    )
    assert price == price.quantize(CENT)

    def meets(p: Decimal) -> bool:
        fee = max(p * referral / 100, minimum_fee)
        profit = p - fee - fba - cost
        wanted_margin = margin if margin is not None or roi is not None else D(0)
        ok = wanted_margin is None or profit >= p * wanted_margin / 100
        return ok and (roi is None or profit >= cost * roi / 100)

    assert meets(price)
    assert price == CENT or not meets(price - CENT)


def test_rounding_is_half_up_not_bankers() -> None:
    # The property tests above rely on this context-independent rounding.
    assert D("0.105").quantize(CENT, rounding=ROUND_HALF_UP) == D("0.11")
    listing = ListingState(
        "S", "B", "M", "USD", "new", "FBM", D("21.00"), min_price=D("1"), max_price=D("99")
    )
    rule = Rule.from_dict({"strategy": {"kind": "buy_box", "mode": "beat", "percent": "0.5"}})
    offer = Offer("A", D("21.00"), is_buy_box_winner=True)
    assert decide(listing, [offer], rule, History(now=datetime(2025, 1, 1, tzinfo=UTC))).new_price == D(
        "20.89"
    )
    assert replace(offer, price=D("21.00")).landed == D("21.00")
