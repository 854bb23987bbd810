"""Guards: step and daily limits (amount, percent, both), cooldown, price-war breaker, anomaly alert,
pause, kill switch and dry-run. Expected prices by hand beside each case.

Unless said otherwise: listing at 20.00 in 10.00..30.00, strategy "beat the Buy Box by a cent".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from repricing.tests.test_engine_strategies import NOW, history, listing, offer, ours, rule, run

D = Decimal
BEAT_BB = {"kind": "buy_box", "mode": "beat", "amount": "0.01"}


def bb(price: str) -> list[Any]:
    return [ours(), offer("A", price, is_buy_box_winner=True)]


def guarded(**guards: Any) -> Any:
    return rule(BEAT_BB, guards=guards)


# --- Step and daily limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "price"),
    [
        ({"amount": "0.50"}, D("19.50")),  # 20.00 - 0.50
        ({"percent": "5"}, D("19.00")),  # 5 % of 20.00 = 1.00
        ({"amount": "0.50", "percent": "5"}, D("19.50")),  # the tighter: 0.50
        ({"amount": "3.00", "percent": "5"}, D("19.00")),  # the tighter: 1.00
    ],
)
def test_step_limit_clamps_toward_the_target(limit: dict[str, str], price: Decimal) -> None:
    # Target 18.01 - 0.01 = 18.00, two whole units away.
    d = run(bb("18.01"), guarded(max_step=limit))
    assert (d.action, d.new_price, d.target_price, d.reason, d.price_reason) == (
        "change", price, D("18.00"), "max_step", "beat_buy_box",
    )  # fmt: skip


def test_step_percent_rounds_down() -> None:
    # 5 % of 19.99 = 0.9995 -> 0.99 (down: a 1.00 move would exceed 5 %); 19.99 - 0.99 = 19.00.
    d = run(bb("15.00"), guarded(max_step={"percent": "5"}), listing(current_price=D("19.99")))
    assert d.new_price == D("19.00")


def test_step_limit_up_as_well_as_down() -> None:
    # Buy Box 25.00 matched; step 1.00 -> 21.00.
    d = run(bb("25.00"), rule({"kind": "buy_box", "mode": "match"}, guards={"max_step": {"amount": "1.00"}}))
    assert (d.new_price, d.reason) == (D("21.00"), "max_step")


def test_a_target_within_the_step_is_taken_whole() -> None:
    d = run(bb("19.80"), guarded(max_step={"amount": "0.50"}))
    assert (d.new_price, d.reason) == (D("19.79"), "beat_buy_box")


def test_daily_limit_counts_from_the_days_opening_price() -> None:
    # Day opened at 21.00; 10 % = 2.10 -> band 18.90..23.10; target 18.00 -> 18.90.
    d = run(bb("18.01"), guarded(max_daily={"percent": "10"}), hist=history(day_open_price=D("21.00")))
    assert (d.new_price, d.reason) == (D("18.90"), "max_daily")


def test_daily_limit_without_an_opening_price_counts_from_the_current_price() -> None:
    # No change yet today: opening = 20.00; 2.00 -> 18.00 allowed, target 17.99 -> 18.00.
    d = run(bb("18.00"), guarded(max_daily={"amount": "2.00"}))
    assert (d.new_price, d.reason) == (D("18.00"), "max_daily")


def test_daily_limit_used_up_holds() -> None:
    # Opened at 20.00, already down to 18.00 with a 2.00 daily limit: no room lower today.
    d = run(
        bb("17.00"),
        guarded(max_daily={"amount": "2.00"}),
        listing(current_price=D("18.00")),
        hist=history(day_open_price=D("20.00")),
    )
    assert (d.action, d.reason, d.new_price) == ("hold", "max_daily", None)


def test_limits_never_move_away_from_the_target() -> None:
    # Opened at 22.00 with a 2.00 daily limit (band 20.00..24.00) but now at 19.00 (the price moved
    # outside the band, e.g. a manual change): the target 17.99 is below; the band would push us UP to
    # 20.00, away from the target -> hold.
    d = run(
        bb("18.00"),
        guarded(max_daily={"amount": "2.00"}),
        listing(current_price=D("19.00")),
        hist=history(day_open_price=D("22.00")),
    )
    assert (d.action, d.reason) == ("hold", "max_daily")


def test_limits_never_overshoot_the_target() -> None:
    # We hold the Buy Box at 20.00 and probe to 20.25; the day opened at 21.00 with a 0.50 daily limit,
    # so only 20.50..21.50 is allowed today: every allowed price is past the target -> hold.
    d = run(
        [ours(is_buy_box_winner=True)],
        rule(BEAT_BB, buy_box_probe={"amount": "0.25"}, guards={"max_daily": {"amount": "0.50"}}),
        hist=history(day_open_price=D("21.00")),
    )
    assert (d.action, d.target_price, d.reason) == ("hold", D("20.25"), "max_daily")


def test_step_and_daily_together_the_tighter_binds() -> None:
    # Step 1.00 (band 19.00..21.00), daily 5 % of 20.40 = 1.02 (band 19.38..21.42): target 18.00 -> 19.38.
    d = run(
        bb("18.01"),
        guarded(max_step={"amount": "1.00"}, max_daily={"percent": "5"}),
        hist=history(day_open_price=D("20.40")),
    )
    assert (d.new_price, d.reason) == (D("19.38"), "max_daily")


def test_current_price_out_of_bounds_and_out_of_reach_holds_with_an_alert() -> None:
    # At 5.00, min raised to 10.00, step 1.00: 6.00 is the most the step allows, still below the min.
    d = run(bb("19.99"), guarded(max_step={"amount": "1.00"}), listing(current_price=D("5.00")))
    assert (d.action, d.reason, d.alerts) == ("hold", "limits_conflict", ("out_of_bounds",))
    # Without limits the bounds win at once: straight to the target 19.98 (inside [10, 30]).
    d = run(bb("19.99"), rule(BEAT_BB), listing(current_price=D("5.00")))
    assert d.new_price == D("19.98")


# --- Cooldown, price war, anomaly, pause --------------------------------------------------------------


def test_cooldown() -> None:
    the_rule = guarded(cooldown_seconds=600)
    d = run(bb("19.00"), the_rule, hist=history(last_change_at=NOW - timedelta(seconds=100)))
    assert (d.action, d.reason, d.price_reason, d.target_price) == (
        "hold",
        "cooldown",
        "beat_buy_box",
        D("18.99"),
    )
    assert next(s for s in d.trace if s.code == "cooldown").data["seconds_left"] == "500"
    d = run(bb("19.00"), the_rule, hist=history(last_change_at=NOW - timedelta(seconds=600)))
    assert (d.action, d.new_price) == ("change", D("18.99"))


def test_price_war_pauses_and_alerts() -> None:
    war = guarded(price_war={"undercuts": 3, "window_seconds": 3600, "pause_seconds": 7200})
    undercuts = (NOW - timedelta(minutes=50), NOW - timedelta(minutes=20), NOW - timedelta(minutes=1))
    d = run(bb("19.00"), war, hist=history(undercut_times=undercuts))
    assert (d.action, d.reason, d.alerts, d.submit) == ("pause", "price_war", ("price_war",), False)
    assert d.pause_until == NOW + timedelta(hours=2)
    assert d.new_price is None and d.target_price == D("18.99")


def test_price_war_counts_only_the_window() -> None:
    war = guarded(price_war={"undercuts": 3, "window_seconds": 3600, "pause_seconds": 7200})
    # One of the three is 61 minutes old: 2 in the window -> reprice normally.
    undercuts = (NOW - timedelta(minutes=61), NOW - timedelta(minutes=20), NOW - timedelta(minutes=1))
    d = run(bb("19.00"), war, hist=history(undercut_times=undercuts))
    assert (d.action, d.new_price) == ("change", D("18.99"))


def test_price_war_does_not_stop_a_raise() -> None:
    # Target 24.99 is above 20.00: following the market up is no price war.
    war = guarded(price_war={"undercuts": 1, "window_seconds": 3600, "pause_seconds": 7200})
    d = run(bb("25.00"), war, hist=history(undercut_times=(NOW - timedelta(minutes=5),)))
    assert d.new_price == D("24.99")


@pytest.mark.parametrize(
    ("buy_box", "action", "alerts"),
    [
        ("12.01", "hold", ("anomaly",)),  # 20.00 -> 12.00 is 40 %: at or over 30 %
        ("14.01", "hold", ("anomaly",)),  # 20.00 -> 14.00 is exactly 30 %
        ("14.02", "change", ()),  # 14.01 is 29.95 %
    ],
)
def test_anomaly(buy_box: str, action: str, alerts: tuple[str, ...]) -> None:
    d = run(bb(buy_box), guarded(anomaly={"percent": "30"}))
    assert (d.action, d.alerts) == (action, alerts)
    if action == "hold":
        assert d.reason == "anomaly"


def test_paused_sku_is_held_until_the_pause_ends() -> None:
    d = run(bb("19.00"), hist=history(paused_until=NOW + timedelta(minutes=1)))
    assert (d.action, d.reason) == ("hold", "paused")
    d = run(bb("19.00"), hist=history(paused_until=NOW))
    assert d.action == "change"


def test_no_current_price_holds() -> None:
    d = run(bb("19.00"), the_listing=listing(current_price=None))
    assert (d.action, d.reason, d.old_price) == ("hold", "no_current_price", None)


def test_naive_times_are_read_as_utc() -> None:
    naive_now = datetime(2025, 6, 4, 15, 30)
    d = run(
        bb("19.00"),
        guarded(cooldown_seconds=600),
        hist=history(now=naive_now, last_change_at=datetime(2025, 6, 4, 15, 25, tzinfo=UTC)),
    )
    assert d.reason == "cooldown"


# --- Kill switch and dry-run ----------------------------------------------------------------------------


def test_kill_switch_computes_but_never_submits() -> None:
    d = run(bb("19.99"), kill_switch=True)
    assert (d.action, d.new_price, d.submit, d.reason, d.price_reason) == (
        "change", D("19.98"), False, "kill_switch", "beat_buy_box",
    )  # fmt: skip
    step = d.trace[-1]
    assert step.code == "kill_switch" and "19.98" in step.message


def test_kill_switch_on_a_hold_keeps_the_hold_reason() -> None:
    d = run(bb("19.00"), guarded(cooldown_seconds=600), hist=history(last_change_at=NOW), kill_switch=True)
    assert (d.action, d.reason, d.submit) == ("hold", "cooldown", False)
    assert d.trace[-1].code == "kill_switch"


def test_kill_switch_wins_over_dry_run() -> None:
    d = run(bb("19.99"), rule(BEAT_BB, dry_run=True), kill_switch=True, tenant_dry_run=True)
    assert (d.reason, d.submit) == ("kill_switch", False)


@pytest.mark.parametrize(
    ("rule_dry", "tenant_dry", "scope"), [(True, False, "rule"), (False, True, "tenant")]
)
def test_dry_run(rule_dry: bool, tenant_dry: bool, scope: str) -> None:
    d = run(bb("19.99"), rule(BEAT_BB, dry_run=rule_dry), tenant_dry_run=tenant_dry)
    assert (d.action, d.new_price, d.submit, d.reason, d.price_reason) == (
        "change", D("19.98"), False, "dry_run", "beat_buy_box",
    )  # fmt: skip
    assert d.trace[-1].data["scope"] == scope
