"""How repricing looks to a seller: plain words for reason codes and rules, and the geometry of the
server-rendered SVG charts (price history of a SKU, decisions per day). Pure functions, no queries:
the views load the rows, these turn them into sentences and coordinates the templates draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

# --- Reasons and rules in plain words ------------------------------------------------------------------

REASONS: dict[str, str] = {
    "no_current_price": "No live price to reprice",
    "paused": "Repricing of this SKU is paused",
    "no_bounds": "No min and max price: never repriced without both",
    "invalid_bounds": "The min and max prices do not make sense",
    "schedule_pause": "Paused by the rule's schedule",
    "own_buy_box": "We hold the Buy Box: price kept",
    "buy_box_shared": "Buy Box shared with others: price kept",
    "buy_box_probe": "We hold the Buy Box: raising to probe",
    "probe_at_max": "We hold the Buy Box at the max price",
    "no_competitors": "No competitor left after the filters",
    "no_buy_box": "Nobody holds the Buy Box",
    "current_price": "Current price with adjustments",
    "price_war": "Price war: repricing paused",
    "anomaly": "Unusually large move: held for review",
    "held_at_min": "Stopped at the min price",
    "held_at_max": "Stopped at the max price",
    "below_min": "Target below the min price: held",
    "above_max": "Target above the max price: held",
    "no_change": "Already at the target price",
    "cooldown": "Waiting for the cooldown between changes",
    "max_step": "Limited by the largest step per change",
    "max_daily": "Limited by the largest change per day",
    "out_of_bounds": "Current price outside min/max and out of reach",
    "limits_conflict": "Limits leave no room to move",
    "kill_switch": "Kill switch on: nothing sent",
    "dry_run": "Dry run: decided, not sent",
}

_KIND_WORDS = {
    "buy_box": "the Buy Box",
    "lowest": "the lowest price",
    "lowest_fba": "the lowest FBA price",
    "named_competitors": "the named competitors",
}
_MODE_WORDS = {"match": "Matched", "beat": "Beat", "above": "Stayed above"}
_FALLBACK_WORDS = {"min": "went to the min price", "max": "went to the max price"}


def reason_label(code: str) -> str:
    """A reason code of the engine in plain words (unknown codes are spelt out, never hidden)."""
    if code in REASONS:
        return REASONS[code]
    mode, _, kind = code.partition("_")
    if mode in _MODE_WORDS and kind in _KIND_WORDS:
        return f"{_MODE_WORDS[mode]} {_KIND_WORDS[kind]}"
    situation, _, to = code.rpartition("_")
    if situation in REASONS and to in _FALLBACK_WORDS:
        return f"{REASONS[situation]}: {_FALLBACK_WORDS[to]}"
    return code.replace("_", " ").capitalize() if code else "—"


ACTIONS = {"change": "Change price", "hold": "Hold price", "pause": "Pause"}
ALERTS = {
    "price_war": "Price war",
    "anomaly": "Anomalous move",
    "out_of_bounds": "Out of bounds",
}


def alert_label(code: str) -> str:
    return ALERTS.get(code, code.replace("_", " ").capitalize())


STRATEGY_KINDS = {
    "buy_box": "Buy Box",
    "lowest": "Lowest price",
    "lowest_fba": "Lowest FBA price",
    "named_competitors": "Named competitors",
    "current": "Current price (adjustments only)",
}


def _minutes(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


def _offset(section: Mapping[str, Any]) -> str:
    if section.get("percent") is not None:
        return f"{section['percent']}%"
    return str(section.get("amount"))


def _limit(limit: Mapping[str, Any] | None) -> str | None:
    if not limit:
        return None
    parts = [str(limit["amount"])] if limit.get("amount") else []
    if limit.get("percent"):
        parts.append(f"{limit['percent']}%")
    return " or ".join(parts) + (" (whichever is smaller)" if len(parts) == 2 else "")


def rule_summary(config: Mapping[str, Any]) -> list[str]:
    """The rule's configuration (the engine's canonical JSON) as short sentences, strategy first."""
    lines: list[str] = []
    s = config.get("strategy") or {}
    kind, mode = s.get("kind", "buy_box"), s.get("mode", "match")
    target = _KIND_WORDS.get(kind, kind)
    if kind == "named_competitors":
        target = "competitors " + ", ".join(s.get("competitors") or [])
    if kind == "current":
        lines.append("Start from the current price; only the adjustments below move it.")
    elif mode == "match":
        lines.append(f"Match {target}.")
    elif mode == "beat":
        lines.append(f"Beat {target} by {_offset(s)}.")
    else:
        lines.append(f"Stay {_offset(s)} above {target}.")
    if kind == "buy_box":
        no_bb = s.get("when_no_buy_box", "lowest")
        lines.append(
            "When nobody holds the Buy Box: "
            + {
                "lowest": "price against the lowest offer.",
                "hold": "keep the price.",
                "min": "go to the min price.",
                "max": "go to the max price.",
            }.get(no_bb, no_bb)
        )
    alone = s.get("when_alone", "hold")
    if kind != "current":
        lines.append(
            "When no competitor is left: "
            + {"hold": "keep the price.", "min": "go to the min price.", "max": "go to the max price."}.get(
                alone, alone
            )
        )
    f = config.get("filters") or {}
    only = []
    if f.get("fulfillment") and f["fulfillment"] != "any":
        only.append(f"{f['fulfillment']} offers only")
    if f.get("min_feedback_rating") is not None:
        only.append(f"feedback at least {f['min_feedback_rating']:g}% positive")
    if f.get("min_feedback_count") is not None:
        only.append(f"at least {f['min_feedback_count']} ratings")
    if f.get("conditions"):
        only.append("condition " + "/".join(f["conditions"]))
    if f.get("ships_from"):
        only.append("shipping from " + ", ".join(f["ships_from"]))
    if f.get("max_handling_hours") is not None:
        only.append(f"handling within {f['max_handling_hours']} h")
    if f.get("exclude_amazon"):
        only.append("ignoring Amazon")
    if f.get("exclude_sellers"):
        only.append("ignoring " + ", ".join(f["exclude_sellers"]))
    if f.get("only_sellers"):
        only.append("only against " + ", ".join(f["only_sellers"]))
    if only:
        lines.append("Competitors counted: " + "; ".join(only) + ".")
    probe = config.get("buy_box_probe")
    if probe:
        sharing = "keep the price" if probe.get("when_sharing") == "hold" else "probe anyway"
        lines.append(
            f"Holding the Buy Box: raise by {_offset(probe)} per step up to the max price; when it is "
            f"shared (held under {round(float(probe.get('sharing_below', 0.9)) * 100):g}% of the time), "
            f"{sharing}."
        )
    velocity = config.get("velocity")
    if velocity:
        lines.append(
            f"Sales pace: target {velocity['target_units_7d']} units in 7 days; faster raises "
            f"{velocity['raise_percent']}%, slower lowers {velocity['lower_percent']}%."
        )
    inventory = config.get("inventory")
    if inventory:
        parts = []
        if inventory.get("low_days_of_cover") is not None:
            parts.append(
                f"under {inventory['low_days_of_cover']:g} days of cover raise {inventory['raise_percent']}%"
            )
        if inventory.get("high_days_of_cover") is not None:
            parts.append(f"over {inventory['high_days_of_cover']:g} days lower {inventory['lower_percent']}%")
        if inventory.get("aged_units_min") is not None:
            parts.append(
                f"{inventory['aged_units_min']}+ aged units lower {inventory['aged_lower_percent']}%"
            )
        lines.append("Stock: " + "; ".join(parts) + ".")
    schedule = config.get("schedule")
    if schedule:
        lines.append(
            f"Schedule ({schedule['timezone']}): "
            + "; ".join(schedule_entry_text(entry) for entry in schedule["entries"])
            + "."
        )
    bounds = (config.get("bounds") or {}).get("out_of_bounds", "bound")
    lines.append(
        "Target outside the SKU's min/max: "
        + ("go to the nearest bound." if bounds == "bound" else "keep the price.")
    )
    g = config.get("guards") or {}
    guards = []
    if _limit(g.get("max_step")):
        guards.append(f"at most {_limit(g.get('max_step'))} per change")
    if _limit(g.get("max_daily")):
        guards.append(f"at most {_limit(g.get('max_daily'))} per day")
    if g.get("cooldown_seconds"):
        guards.append(f"{_minutes(int(g['cooldown_seconds']))} between changes")
    war = g.get("price_war")
    if war:
        guards.append(
            f"{war['undercuts']} undercuts within {_minutes(int(war['window_seconds']))} pause the SKU for "
            f"{_minutes(int(war['pause_seconds']))}"
        )
    if g.get("anomaly"):
        guards.append(f"a move of {g['anomaly']['percent']}% or more is held and alerted")
    if guards:
        lines.append("Guards: " + "; ".join(guards) + ".")
    if config.get("dry_run"):
        lines.append("Dry run: decisions are shown, never sent to Amazon.")
    return lines


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def schedule_entry_text(entry: Mapping[str, Any]) -> str:
    """One schedule entry as the rule form writes it: "sat,sun 00:00-24:00 +3%" / "mon 22:00-06:00 pause"."""
    days = ",".join(entry.get("days") or [])
    what = "pause" if entry.get("pause") else _signed_percent(entry.get("adjust_percent"))
    return f"{days} {entry.get('start')}-{entry.get('end')} {what}"


def _signed_percent(value: Any) -> str:
    number = Decimal(str(value))
    return f"+{number}%" if number > 0 else f"{number}%"


# --- Charts ---------------------------------------------------------------------------------------------


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Marker:
    """One decision drawn on the price chart (a change, a paused SKU...), linking to its explanation."""

    x: float
    y: float
    kind: str  # "change" | "dry_run" | "pause" | "alert"
    label: str
    anchor: str

    @property
    def corner_x(self) -> float:
        return round(self.x - 5, 1)

    @property
    def corner_y(self) -> float:
        return round(self.y - 5, 1)


@dataclass
class PriceChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    paths: dict[str, str] = field(default_factory=dict)  # series -> SVG path "d"
    markers: list[Marker] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    bounds: dict[str, float] = field(default_factory=dict)  # "min"/"max" -> y
    empty: bool = True


@dataclass(frozen=True)
class ChartDecision:
    at: datetime
    price: Decimal | None
    kind: str
    label: str
    anchor: str


Series = Sequence[tuple[datetime, Decimal | None]]

CHART_WIDTH, CHART_HEIGHT = 760, 300
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 64, 16, 14, 34


def _fmt_price(value: float, step: float) -> str:
    return f"{value:.2f}" if step < 1 else f"{value:,.0f}" if step >= 10 else f"{value:.1f}"


def price_chart(
    *,
    start: datetime,
    end: datetime,
    series: Mapping[str, Series],
    decisions: Iterable[ChartDecision] = (),
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
) -> PriceChart:
    """Step lines per series (a price holds until the next observation; None breaks the line), one marker
    per decision, dashed min/max lines, and axes with round price ticks and dates/times."""
    chart = PriceChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=_MARGIN_LEFT,
        right=CHART_WIDTH - _MARGIN_RIGHT,
        top=_MARGIN_TOP,
        bottom=CHART_HEIGHT - _MARGIN_BOTTOM,
    )
    decisions = [d for d in decisions if start <= d.at <= end]
    values = [float(v) for points in series.values() for t, v in points if v is not None and t <= end]
    values += [float(d.price) for d in decisions if d.price is not None]
    if not values:
        return chart
    chart.empty = False
    bound_values = [float(v) for v in (min_price, max_price) if v is not None]
    low, high = min(values + bound_values), max(values + bound_values)
    if high - low < 0.01:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    step = _nice_step(high - low + 2 * pad)
    low = math.floor((low - pad) / step) * step
    high = math.ceil((high + pad) / step) * step
    plot_w, plot_h = chart.right - chart.left, chart.bottom - chart.top
    span = max((end - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        seconds = min(max((moment - start).total_seconds(), 0.0), span)
        return round(chart.left + seconds / span * plot_w, 1)

    def y(value: float) -> float:
        return round(chart.top + (high - value) / (high - low) * plot_h, 1)

    for name, points in series.items():
        d: list[str] = []
        ordered = sorted((p for p in points if p[0] <= end), key=lambda p: p[0])
        previous: float | None = None
        for index, (moment, value) in enumerate(ordered):
            if value is None:
                if previous is not None:
                    d.append(f"H{x(moment)}")
                previous = None
                continue
            px, py = x(moment), y(float(value))
            if previous is None:
                d.append(f"M{px} {py}")
            else:
                d.append(f"H{px} V{py}")
            previous = py
            if index == len(ordered) - 1:
                d.append(f"H{x(end)}")
        chart.paths[name] = " ".join(d)
    for decision in decisions:
        if decision.price is None:
            continue
        chart.markers.append(
            Marker(
                x=x(decision.at),
                y=y(float(decision.price)),
                kind=decision.kind,
                label=decision.label,
                anchor=decision.anchor,
            )
        )
    for name, bound in (("min", min_price), ("max", max_price)):
        if bound is not None:
            chart.bounds[name] = y(float(bound))
    tick = low
    while tick <= high + step / 2:
        chart.y_ticks.append(Tick(position=y(tick), label=_fmt_price(tick, step)))
        tick += step
    short = span <= 2 * 86400
    for i in range(6):
        moment = start + (end - start) * i / 5
        chart.x_ticks.append(Tick(position=x(moment), label=moment.strftime("%H:%M" if short else "%b %-d")))
    return chart


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    action: str
    count: int
    label: str


@dataclass
class ActivityChart:
    width: int
    height: int
    bar_width: float
    baseline: float
    days: list[Tick] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    total: int = 0


ACTIVITY_ORDER = ("change", "pause", "hold")


def activity_chart(rows: Iterable[Mapping[str, Any]], *, first_day: date, days: int) -> ActivityChart:
    """Stacked bars of decisions per day and action (rows: {"day", "action", "count"})."""
    width, height, left, top, bottom = 760, 180, 40, 10, 24
    counts: dict[tuple[date, str], int] = {}
    for row in rows:
        counts[(row["day"], row["action"])] = counts.get((row["day"], row["action"]), 0) + int(row["count"])
    per_day = [sum(counts.get((first_day + timedelta(i), a), 0) for a in ACTIVITY_ORDER) for i in range(days)]
    peak = max([*per_day, 1])
    step = max(1, math.ceil(_nice_step(peak, 3)))
    top_value = math.ceil(peak / step) * step
    plot_h = height - top - bottom
    slot = (width - left - 8) / days
    chart = ActivityChart(
        width=width, height=height, bar_width=round(slot * 0.7, 1), baseline=height - bottom
    )
    chart.total = sum(per_day)
    for i in range(days):
        day = first_day + timedelta(i)
        bx = round(left + i * slot + slot * 0.15, 1)
        stacked = 0
        for action in ACTIVITY_ORDER:
            count = counts.get((day, action), 0)
            if not count:
                continue
            h = round(count / top_value * plot_h, 1)
            stacked_h = round((stacked + count) / top_value * plot_h, 1)
            chart.bars.append(
                Bar(
                    x=bx,
                    y=round(chart.baseline - stacked_h, 1),
                    height=h,
                    action=action,
                    count=count,
                    label=f"{day:%b %-d}: {ACTIONS[action]} × {count}",  # noqa: RUF001
                )
            )
            stacked += count
        if days <= 16 or i % 2 == 0:
            chart.days.append(Tick(position=round(bx + chart.bar_width / 2, 1), label=day.strftime("%-d %b")))
    value = 0
    while value <= top_value:
        chart.y_ticks.append(
            Tick(position=round(chart.baseline - value / top_value * plot_h, 1), label=str(value))
        )
        value += step
    return chart
