"""Rule parsing: defaults, the canonical form and its round trip, and errors naming the field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from repricing.engine import Rule, RuleError
from repricing.engine.rules import Filters, Guards, Limit, PriceWar, ScheduleEntry, Strategy

D = Decimal

FULL: dict[str, Any] = {
    "strategy": {
        "kind": "named_competitors",
        "mode": "beat",
        "percent": "0.5",
        "competitors": ["B2", "A1"],
        "when_no_buy_box": "max",
        "when_alone": "min",
    },
    "filters": {
        "fulfillment": "FBA",
        "min_feedback_rating": 92.5,
        "min_feedback_count": 100,
        "conditions": ["new", "refurbished"],
        "ships_from": ["us", "CA"],
        "max_handling_hours": 48,
        "exclude_amazon": True,
        "exclude_sellers": ["DUMP"],
        "only_sellers": [],
    },
    "buy_box_probe": {"percent": "1", "when_sharing": "probe", "sharing_below": 0.8},
    "velocity": {
        "target_units_7d": 12,
        "raise_percent": "2",
        "lower_percent": 1.5,
        "tolerance_percent": "10",
    },
    "inventory": {
        "low_days_of_cover": 7,
        "raise_percent": "5",
        "high_days_of_cover": 120.5,
        "lower_percent": "4",
        "aged_units_min": 3,
        "aged_lower_percent": "8",
    },
    "schedule": {
        "timezone": "Europe/Berlin",
        "entries": [
            {"days": ["sun", "sat"], "start": "08:00", "end": "24:00", "adjust_percent": "-2.5"},
            {"days": ["fri"], "start": "23:30", "end": "01:15", "pause": True},
        ],
    },
    "bounds": {"out_of_bounds": "hold"},
    "guards": {
        "max_step": {"amount": "1.00", "percent": "5"},
        "max_daily": {"percent": "15"},
        "cooldown_seconds": 900,
        "price_war": {"undercuts": 5, "window_seconds": 3600, "pause_seconds": 21600},
        "anomaly": {"percent": "40"},
    },
    "dry_run": True,
}


def test_minimal_rule_gets_the_documented_defaults() -> None:
    r = Rule.from_dict({"strategy": {"kind": "lowest"}})
    assert r.strategy == Strategy(kind="lowest", mode="match", when_no_buy_box="lowest", when_alone="hold")
    assert r.filters == Filters() and r.guards == Guards()
    assert r.bounds.out_of_bounds == "bound"
    assert (r.buy_box_probe, r.velocity, r.inventory, r.schedule, r.dry_run) == (
        None,
        None,
        None,
        None,
        False,
    )


def test_full_rule_parses() -> None:
    r = Rule.from_dict(FULL)
    assert r.strategy.percent == D("0.5") and r.strategy.competitors == frozenset({"A1", "B2"})
    assert r.filters.ships_from == frozenset({"US", "CA"}) and r.filters.min_feedback_rating == 92.5
    assert r.velocity is not None and r.velocity.lower_percent == D("1.5")
    assert r.schedule is not None
    assert r.schedule.entries[0] == ScheduleEntry(
        days=(5, 6), start=8 * 60, end=24 * 60, adjust_percent=D("-2.5")
    )
    assert r.schedule.entries[1].pause and r.schedule.entries[1].end == 75
    assert r.guards.max_step == Limit(D("1.00"), D("5"))
    assert r.guards.price_war == PriceWar(5, 3600, 21600)
    assert r.guards.anomaly_percent == D("40")


@pytest.mark.parametrize("data", [FULL, {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}}])
def test_round_trip_through_json(data: dict[str, Any]) -> None:
    r = Rule.from_dict(data)
    canonical = r.to_dict()
    again = Rule.from_dict(json.loads(json.dumps(canonical)))
    assert again == r
    assert again.to_dict() == canonical


def test_canonical_form_has_every_key_and_strings_for_amounts() -> None:
    canonical = Rule.from_dict(FULL).to_dict()
    assert set(canonical) == {
        "strategy", "filters", "buy_box_probe", "velocity", "inventory", "schedule", "bounds", "guards",
        "dry_run",
    }  # fmt: skip
    assert canonical["strategy"]["percent"] == "0.5" and canonical["strategy"]["competitors"] == ["A1", "B2"]
    assert canonical["velocity"]["lower_percent"] == "1.5"
    assert canonical["schedule"]["entries"][0]["days"] == ["sat", "sun"]
    assert canonical["schedule"]["entries"][1]["start"] == "23:30"
    assert canonical["guards"]["anomaly"] == {"percent": "40"}


def test_float_amounts_keep_their_shortest_text() -> None:
    r = Rule.from_dict({"strategy": {"kind": "buy_box", "mode": "beat", "amount": 0.1}})
    assert r.strategy.amount == D("0.1")


BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "strategy"),
    ({"strategy": {"kind": "buy_box"}, "colour": "red"}, "colour"),
    ({"strategy": {"kind": "buy_box", "speed": 1}}, "strategy.speed"),
    ({"strategy": {}}, "strategy.kind"),
    ({"strategy": {"kind": "cheapest"}}, "strategy.kind"),
    ({"strategy": {"kind": "buy_box", "mode": "undercut"}}, "strategy.mode"),
    ({"strategy": {"kind": "buy_box", "mode": "beat"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01", "percent": "1"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": "-0.01"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": "abc"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": "NaN"}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "amount": True}}, "strategy.amount"),
    ({"strategy": {"kind": "buy_box", "mode": "beat", "percent": "100"}}, "strategy.percent"),
    ({"strategy": {"kind": "buy_box", "mode": "match", "amount": "0.01"}}, "strategy.amount"),
    ({"strategy": {"kind": "current", "mode": "beat", "amount": "1"}}, "strategy.mode"),
    ({"strategy": {"kind": "named_competitors"}}, "strategy.competitors"),
    ({"strategy": {"kind": "lowest", "competitors": ["A"]}}, "strategy.competitors"),
    ({"strategy": {"kind": "buy_box", "when_alone": "lowest"}}, "strategy.when_alone"),
    ({"strategy": {"kind": "buy_box"}, "filters": {"fulfillment": "fba"}}, "filters.fulfillment"),
    (
        {"strategy": {"kind": "buy_box"}, "filters": {"min_feedback_rating": 101}},
        "filters.min_feedback_rating",
    ),
    ({"strategy": {"kind": "buy_box"}, "filters": {"min_feedback_count": -1}}, "filters.min_feedback_count"),
    ({"strategy": {"kind": "buy_box"}, "filters": {"min_feedback_count": 1.5}}, "filters.min_feedback_count"),
    ({"strategy": {"kind": "buy_box"}, "filters": {"conditions": ["mint"]}}, "filters.conditions"),
    ({"strategy": {"kind": "buy_box"}, "filters": {"exclude_sellers": "A"}}, "filters.exclude_sellers"),
    (
        {"strategy": {"kind": "buy_box"}, "filters": {"exclude_sellers": ["A"], "only_sellers": ["A"]}},
        "filters.only_sellers",
    ),
    ({"strategy": {"kind": "lowest_fba"}, "filters": {"fulfillment": "FBM"}}, "filters.fulfillment"),
    ({"strategy": {"kind": "buy_box"}, "buy_box_probe": {}}, "buy_box_probe.amount"),
    (
        {"strategy": {"kind": "buy_box"}, "buy_box_probe": {"amount": "1", "sharing_below": 2}},
        "buy_box_probe.sharing_below",
    ),
    ({"strategy": {"kind": "buy_box"}, "velocity": {"raise_percent": "1"}}, "velocity.target_units_7d"),
    ({"strategy": {"kind": "buy_box"}, "velocity": {"target_units_7d": 5}}, "velocity.raise_percent"),
    (
        {"strategy": {"kind": "buy_box"}, "velocity": {"target_units_7d": 5, "lower_percent": "100"}},
        "velocity.lower_percent",
    ),
    ({"strategy": {"kind": "buy_box"}, "inventory": {}}, "inventory"),
    ({"strategy": {"kind": "buy_box"}, "inventory": {"low_days_of_cover": 5}}, "inventory.raise_percent"),
    (
        {
            "strategy": {"kind": "buy_box"},
            "inventory": {
                "low_days_of_cover": 50,
                "raise_percent": "1",
                "high_days_of_cover": 10,
                "lower_percent": "1",
            },
        },
        "inventory.high_days_of_cover",
    ),
    ({"strategy": {"kind": "buy_box"}, "schedule": {"entries": []}}, "schedule.timezone"),
    (
        {"strategy": {"kind": "buy_box"}, "schedule": {"timezone": "Mars/Olympus", "entries": []}},
        "schedule.timezone",
    ),
    ({"strategy": {"kind": "buy_box"}, "schedule": {"timezone": "UTC", "entries": []}}, "schedule.entries"),
    (
        {
            "strategy": {"kind": "buy_box"},
            "schedule": {
                "timezone": "UTC",
                "entries": [{"days": ["mon"], "start": "25:00", "end": "02:00", "pause": True}],
            },
        },
        "schedule.entries[0].start",
    ),
    (
        {
            "strategy": {"kind": "buy_box"},
            "schedule": {
                "timezone": "UTC",
                "entries": [{"days": ["mon"], "start": "02:00", "end": "02:00", "pause": True}],
            },
        },
        "schedule.entries[0].end",
    ),
    (
        {
            "strategy": {"kind": "buy_box"},
            "schedule": {
                "timezone": "UTC",
                "entries": [{"days": ["monday"], "start": "02:00", "end": "03:00", "pause": True}],
            },
        },
        "schedule.entries[0].days",
    ),
    (
        {
            "strategy": {"kind": "buy_box"},
            "schedule": {"timezone": "UTC", "entries": [{"days": ["mon"], "start": "02:00", "end": "03:00"}]},
        },
        "schedule.entries[0].adjust_percent",
    ),
    ({"strategy": {"kind": "buy_box"}, "bounds": {"out_of_bounds": "clamp"}}, "bounds.out_of_bounds"),
    ({"strategy": {"kind": "buy_box"}, "guards": {"max_step": {}}}, "guards.max_step.amount"),
    ({"strategy": {"kind": "buy_box"}, "guards": {"max_step": {"percent": "0"}}}, "guards.max_step.percent"),
    ({"strategy": {"kind": "buy_box"}, "guards": {"max_daily": {"amount": "-1"}}}, "guards.max_daily.amount"),
    ({"strategy": {"kind": "buy_box"}, "guards": {"cooldown_seconds": -5}}, "guards.cooldown_seconds"),
    (
        {"strategy": {"kind": "buy_box"}, "guards": {"price_war": {"undercuts": 3}}},
        "guards.price_war.window_seconds",
    ),
    ({"strategy": {"kind": "buy_box"}, "guards": {"anomaly": {}}}, "guards.anomaly.percent"),
    ({"strategy": {"kind": "buy_box"}, "dry_run": "yes"}, "dry_run"),
    ({"strategy": "buy_box"}, "strategy"),
]


@pytest.mark.parametrize(("data", "field"), BAD)
def test_invalid_rules_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        Rule.from_dict(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, ValueError)


def test_not_an_object() -> None:
    with pytest.raises(RuleError, match="must be an object"):
        Rule.from_dict([])  # type: ignore[arg-type]
