"""Bounds: min/max computed from costs (formulas in repricing/engine/bounds.py, each case worked out by
hand), targets outside [min, max] (go to the bound, or hold), prices exactly at the bounds, and
listings without usable bounds never repriced."""

from __future__ import annotations

from decimal import Decimal

import pytest

from repricing.engine import computed_max_price, computed_min_price
from repricing.tests.test_engine_strategies import listing, offer, ours, rule, run

D = Decimal
BEAT_BB = {"kind": "buy_box", "mode": "beat", "amount": "0.01"}


# --- computed_min_price / computed_max_price ---------------------------------------------------------


def test_min_price_for_a_margin() -> None:
    # cost 10 + FBA 3 = 13; referral 15 %, margin 20 %: 13 / (1 - 0.15 - 0.20) = 13 / 0.65 = 20.00.
    price = computed_min_price(D("10"), D("15"), D("3"), target_margin_percent=D("20"))
    assert price == D("20.00")
    # Check: 20.00 - 3.00 referral - 3 FBA - 10 cost = 4.00 profit = 20 % of 20.00.


def test_min_price_for_an_roi_rounds_up() -> None:
    # ROI 30 %: (10 x 1.30 + 3) / 0.85 = 16 / 0.85 = 18.8235... -> up to 18.83.
    assert computed_min_price(D("10"), D("15"), D("3"), target_roi_percent=D("30")) == D("18.83")


def test_min_price_with_both_targets_meets_both() -> None:
    # max(20.00, 18.83) = 20.00.
    assert computed_min_price(
        D("10"), D("15"), D("3"), target_margin_percent=D("20"), target_roi_percent=D("30")
    ) == D("20.00")


def test_break_even_without_a_target() -> None:
    # 13 / 0.85 = 15.294... -> 15.30.
    assert computed_min_price(D("10"), D("15"), D("3")) == D("15.30")


def test_minimum_referral_fee() -> None:
    # cost 1.00, no FBA fee, 15 % referral with a 0.30 minimum, break even:
    # percentage: 1 / 0.85 = 1.18 (fee would be 0.18 < 0.30); minimum: 1.00 + 0.30 = 1.30 -> 1.30.
    assert computed_min_price(D("1.00"), D("15"), D("0"), referral_min_fee=D("0.30")) == D("1.30")
    # For ROI 50 %: needed 1.50; max(1.50 / 0.85 = 1.7647, 1.50 + 0.30 = 1.80) = 1.80.
    assert computed_min_price(
        D("1.00"), D("15"), D("0"), target_roi_percent=D("50"), referral_min_fee=D("0.30")
    ) == D("1.80")


def test_yen_min_price() -> None:
    # (1000 + 300) / 0.90 = 1444.4 -> up to the whole yen: 1445.
    assert computed_min_price(D("1000"), D("10"), D("300"), currency="JPY") == D("1445")


def test_max_price_for_a_margin_ceiling_rounds_down() -> None:
    # 13 / (1 - 0.15 - 0.40) = 28.888... -> down to 28.88 (at 28.89 the margin would pass 40 %).
    assert computed_max_price(D("10"), D("15"), D("3"), max_margin_percent=D("40")) == D("28.88")
    # Margin and ROI ceilings: ROI 100 %: (10 x 2 + 3) / 0.85 = 27.058... -> the lower, 27.05.
    assert computed_max_price(
        D("10"), D("15"), D("3"), max_margin_percent=D("40"), max_roi_percent=D("100")
    ) == D("27.05")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((D("-1"), D("15"), D("3")), {}),
        ((D("10"), D("100"), D("3")), {}),
        ((D("10"), D("15"), D("-3")), {}),
        ((D("10"), D("15"), D("3")), {"target_margin_percent": D("85")}),  # 15 + 85 = 100 %
        ((D("10"), D("15"), D("3")), {"target_roi_percent": D("-5")}),
    ],
)
def test_impossible_cost_inputs_raise(args: tuple[Decimal, ...], kwargs: dict[str, Decimal]) -> None:
    with pytest.raises(ValueError):
        computed_min_price(*args, **kwargs)


def test_max_price_needs_a_ceiling() -> None:
    with pytest.raises(ValueError, match="max_margin_percent"):
        computed_max_price(D("10"), D("15"), D("3"))


# --- Targets against the bounds --------------------------------------------------------------------


def test_target_below_min_goes_to_min() -> None:
    # Buy Box 9.00 -> 8.99 < min 10.00 -> 10.00.
    d = run([ours(), offer("A", "9.00", is_buy_box_winner=True)])
    assert (d.action, d.new_price, d.target_price, d.reason) == (
        "change",
        D("10.00"),
        D("8.99"),
        "held_at_min",
    )


def test_target_below_min_holds_when_told_to() -> None:
    d = run(
        [ours(), offer("A", "9.00", is_buy_box_winner=True)], rule(BEAT_BB, bounds={"out_of_bounds": "hold"})
    )
    assert (d.action, d.new_price, d.reason, d.submit) == ("hold", None, "below_min", False)


def test_target_above_max_goes_to_max_or_holds() -> None:
    above = {"kind": "buy_box", "mode": "above", "amount": "5.00"}
    # 27.00 + 5.00 = 32.00 > max 30.00.
    d = run([ours(), offer("A", "27.00", is_buy_box_winner=True)], rule(above))
    assert (d.new_price, d.reason) == (D("30.00"), "held_at_max")
    d = run(
        [ours(), offer("A", "27.00", is_buy_box_winner=True)], rule(above, bounds={"out_of_bounds": "hold"})
    )
    assert (d.action, d.reason) == ("hold", "above_max")


def test_target_exactly_at_the_bounds_is_not_out_of_bounds() -> None:
    # 10.01 - 0.01 = 10.00 = min: taken as is, reason stays the strategy's.
    d = run(
        [ours(), offer("A", "10.01", is_buy_box_winner=True)], rule(BEAT_BB, bounds={"out_of_bounds": "hold"})
    )
    assert (d.new_price, d.reason) == (D("10.00"), "beat_buy_box")
    d = run(
        [ours(), offer("A", "30.00", is_buy_box_winner=True)],
        rule({"kind": "buy_box", "mode": "match"}, bounds={"out_of_bounds": "hold"}),
    )
    assert (d.new_price, d.reason) == (D("30.00"), "match_buy_box")


def test_already_at_the_min_holds_there() -> None:
    d = run([offer("A", "5.00", is_buy_box_winner=True)], the_listing=listing(current_price=D("10.00")))
    assert (d.action, d.reason, d.price_reason) == ("hold", "no_change", "held_at_min")


@pytest.mark.parametrize(
    ("minimum", "maximum", "reason"),
    [
        (None, D("30.00"), "no_bounds"),
        (D("10.00"), None, "no_bounds"),
        (None, None, "no_bounds"),
        (D("31.00"), D("30.00"), "invalid_bounds"),
        (D("0"), D("30.00"), "invalid_bounds"),
    ],
)
def test_never_repriced_without_usable_bounds(
    minimum: Decimal | None, maximum: Decimal | None, reason: str
) -> None:
    d = run(
        [ours(), offer("A", "19.99", is_buy_box_winner=True)],
        the_listing=listing(min_price=minimum, max_price=maximum),
    )
    assert (d.action, d.new_price, d.reason, d.submit) == ("hold", None, reason, False)


def test_min_equal_to_max_pins_the_price() -> None:
    d = run(
        [ours(), offer("A", "15.00", is_buy_box_winner=True)],
        the_listing=listing(min_price=D("25.00"), max_price=D("25.00")),
    )
    assert (d.new_price, d.reason) == (D("25.00"), "held_at_min")
