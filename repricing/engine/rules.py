"""A repricing rule: the seller's configuration, as a frozen dataclass tree parsed from JSON.

`Rule.from_dict(data)` validates strictly (unknown keys, wrong types, negative amounts, contradictions)
and raises `RuleError` naming the field ("guards.max_step.percent: must be greater than 0");
`Rule.to_dict()` gives the canonical JSON back (every key present, amounts as strings), and
`Rule.from_dict(rule.to_dict()) == rule`. Every section but ``strategy`` may be left out (or null).

The JSON shape, with the defaults::

    {
      "strategy": {
        "kind": "buy_box",          # buy_box | lowest | lowest_fba | named_competitors | current
        "mode": "match",            # match | beat (go below) | above (stay above)
        "amount": null,             # beat/above by this amount, in the listing's currency ...
        "percent": null,            # ... or by this percent of the competitor's landed price
                                    #     (exactly one of the two for beat/above, neither for match)
        "competitors": [],          # named_competitors: the seller ids to price against
        "when_no_buy_box": "lowest",  # buy_box, nobody holds it: lowest | hold | min | max
        "when_alone": "hold"        # no competitor left after the filters: hold | min | max
      },
      "filters": {                  # which competitor offers count
        "fulfillment": "any",       # any | FBA | FBM
        "min_feedback_rating": null,  # percent positive, 0..100 (offers without a rating fail it)
        "min_feedback_count": null,   # (offers without a count fail it)
        "conditions": [],           # new | used | collectible | refurbished; empty = our listing's
        "ships_from": [],           # country codes; empty = anywhere (offers of unknown origin pass)
        "max_handling_hours": null,   # offers with unknown handling time pass
        "exclude_amazon": false,    # ignore Amazon's own retail offer
        "exclude_sellers": [],      # ignore these seller ids
        "only_sellers": []          # compete only with these seller ids
      },
      "buy_box_probe": {            # when we hold the Buy Box: raise in steps up to the max price
        "amount": "0.10",           # step amount ... or "percent": "1" (exactly one)
        "when_sharing": "hold",     # Amazon rotates the Buy Box between us and others: hold | probe
        "sharing_below": 0.9        # we share it when we held it in fewer than this fraction of
                                    #   recent observations (History.buy_box_share)
      },
      "velocity": {                 # units sold in 7 days vs a target
        "target_units_7d": 20,
        "raise_percent": "3",       # selling faster than the target: raise by this percent
        "lower_percent": "3",       # slower: lower by this percent
        "tolerance_percent": "0"    # within +-this percent of the target counts as on target
      },
      "inventory": {                # needs ListingState.days_of_cover / aged_units
        "low_days_of_cover": 7, "raise_percent": "5",       # cover below 7 days: raise 5 %
        "high_days_of_cover": 120, "lower_percent": "5",    # cover above 120 days: lower 5 %
        "aged_units_min": 1, "aged_lower_percent": "10"     # aged stock: lower 10 %
      },
      "schedule": {                 # first matching entry applies
        "timezone": "America/New_York",
        "entries": [
          {"days": ["sat", "sun"], "start": "00:00", "end": "24:00", "adjust_percent": "3"},
          {"days": ["mon"], "start": "22:00", "end": "06:00", "pause": true}
        ]                           # end before start runs past midnight (into the next day)
      },
      "bounds": {"out_of_bounds": "bound"},  # target outside [min, max]: bound (go to it) | hold
      "guards": {
        "max_step": {"amount": "1.00", "percent": "5"},   # per change; both given: the tighter
        "max_daily": {"percent": "15"},                   # from the day's opening price
        "cooldown_seconds": 0,                            # minimum time between changes
        "price_war": {"undercuts": 5, "window_seconds": 3600, "pause_seconds": 21600},
        "anomaly": {"percent": "40"}   # a move of this percent or more: hold and alert
      },
      "dry_run": false               # decide and explain, never submit
    }

Percent values are strings or numbers (floats are read through their shortest repr, so 0.1 is 0.1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZERO = Decimal(0)
HUNDRED = Decimal(100)

KINDS = ("buy_box", "lowest", "lowest_fba", "named_competitors", "current")
MODES = ("match", "beat", "above")
NO_BUY_BOX = ("lowest", "hold", "min", "max")
ALONE = ("hold", "min", "max")
FULFILLMENT = ("any", "FBA", "FBM")
CONDITIONS = ("new", "used", "collectible", "refurbished")
SHARING = ("hold", "probe")
OUT_OF_BOUNDS = ("bound", "hold")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class RuleError(ValueError):
    """The rule is invalid; ``field`` is the dotted path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class _Reader:
    """Reads one JSON object, remembering its path for error messages and refusing unknown keys."""

    def __init__(self, data: object, path: str, allowed: Iterable[str]) -> None:
        if not isinstance(data, Mapping):
            raise RuleError(path, "must be an object")
        unknown = sorted(str(key) for key in data if key not in set(allowed))
        if unknown:
            where = f"{path}." if path else ""
            raise RuleError(f"{where}{unknown[0]}", "unknown field")
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def decimal(
        self,
        key: str,
        *,
        minimum: Decimal | None = ZERO,
        maximum: Decimal | None = None,
        exclusive_minimum: bool = False,
        exclusive_maximum: bool = False,
        required: bool = False,
    ) -> Decimal | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise RuleError(self.at(key), "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RuleError(self.at(key), "must be a number or a decimal string")
        if isinstance(value, float) and not math.isfinite(value):
            raise RuleError(self.at(key), "must be a finite number")
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise RuleError(self.at(key), f"{value!r} is not a number") from None
        if not number.is_finite():
            raise RuleError(self.at(key), "must be a finite number")
        if minimum is not None and (number <= minimum if exclusive_minimum else number < minimum):
            raise RuleError(
                self.at(key), f"must be {'greater than' if exclusive_minimum else 'at least'} {minimum}"
            )
        if maximum is not None and (number >= maximum if exclusive_maximum else number > maximum):
            raise RuleError(
                self.at(key), f"must be {'less than' if exclusive_maximum else 'at most'} {maximum}"
            )
        return number

    def integer(self, key: str, *, minimum: int = 0, default: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleError(self.at(key), "must be a whole number")
        if value < minimum:
            raise RuleError(self.at(key), f"must be at least {minimum}")
        return value

    def number(self, key: str, *, minimum: float, maximum: float | None = None) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RuleError(self.at(key), "must be a number")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise RuleError(self.at(key), f"must be {bound}")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            raise RuleError(self.at(key), f"must be one of {', '.join(choices)}")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise RuleError(self.at(key), "must be true or false")
        return value

    def strings(
        self, key: str, *, choices: tuple[str, ...] | None = None, upper: bool = False
    ) -> frozenset[str]:
        value = self.data.get(key)
        if value is None:
            return frozenset()
        if not isinstance(value, (list, tuple)):
            raise RuleError(self.at(key), "must be a list of strings")
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise RuleError(self.at(key), "must be a list of non-empty strings")
            item = item.strip().upper() if upper else item.strip()
            if choices is not None and item not in choices:
                raise RuleError(self.at(key), f"{item!r} is not one of {', '.join(choices)}")
            items.append(item)
        return frozenset(items)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Strategy:
    """Where the price should be, relative to the competition (see the module docstring)."""

    kind: str = "buy_box"
    mode: str = "match"
    amount: Decimal | None = None
    percent: Decimal | None = None
    competitors: frozenset[str] = frozenset()
    when_no_buy_box: str = "lowest"
    when_alone: str = "hold"

    @classmethod
    def from_dict(cls, data: object, path: str = "strategy") -> Strategy:
        r = _Reader(
            data, path, ("kind", "mode", "amount", "percent", "competitors", "when_no_buy_box", "when_alone")
        )
        if r.raw("kind") is None:
            raise RuleError(r.at("kind"), "is required")
        kind = r.choice("kind", KINDS, "buy_box")
        mode = r.choice("mode", MODES, "match")
        amount = r.decimal("amount", exclusive_minimum=True)
        percent = r.decimal(
            "percent",
            exclusive_minimum=True,
            maximum=HUNDRED if mode == "beat" else Decimal(1000),
            exclusive_maximum=mode == "beat",
        )
        if mode == "match" and (amount is not None or percent is not None):
            raise RuleError(r.at("amount" if amount is not None else "percent"), "match takes no amount")
        if mode != "match" and (amount is None) == (percent is None):
            raise RuleError(r.at("amount"), f"{mode} needs exactly one of amount or percent")
        if kind == "current" and mode != "match":
            raise RuleError(r.at("mode"), "the current-price strategy only matches (adjustments move it)")
        competitors = r.strings("competitors")
        if kind == "named_competitors" and not competitors:
            raise RuleError(r.at("competitors"), "name at least one competitor (seller id)")
        if kind != "named_competitors" and competitors:
            raise RuleError(r.at("competitors"), "only for the named_competitors strategy")
        return cls(
            kind=kind,
            mode=mode,
            amount=amount,
            percent=percent,
            competitors=competitors,
            when_no_buy_box=r.choice("when_no_buy_box", NO_BUY_BOX, "lowest"),
            when_alone=r.choice("when_alone", ALONE, "hold"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mode": self.mode,
            "amount": _dec(self.amount),
            "percent": _dec(self.percent),
            "competitors": sorted(self.competitors),
            "when_no_buy_box": self.when_no_buy_box,
            "when_alone": self.when_alone,
        }


@dataclass(frozen=True, slots=True)
class Filters:
    """Which competitor offers count. Empty sets mean "no restriction" (``conditions``: our own)."""

    fulfillment: str = "any"
    min_feedback_rating: float | None = None
    min_feedback_count: int | None = None
    conditions: frozenset[str] = frozenset()
    ships_from: frozenset[str] = frozenset()
    max_handling_hours: int | None = None
    exclude_amazon: bool = False
    exclude_sellers: frozenset[str] = frozenset()
    only_sellers: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: object, path: str = "filters") -> Filters:
        r = _Reader(
            data,
            path,
            (
                "fulfillment", "min_feedback_rating", "min_feedback_count", "conditions", "ships_from",
                "max_handling_hours", "exclude_amazon", "exclude_sellers", "only_sellers",
            ),
        )  # fmt: skip
        exclude, only = r.strings("exclude_sellers"), r.strings("only_sellers")
        both = sorted(exclude & only)
        if both:
            raise RuleError(r.at("only_sellers"), f"seller {both[0]} is also excluded")
        return cls(
            fulfillment=r.choice("fulfillment", FULFILLMENT, "any"),
            min_feedback_rating=r.number("min_feedback_rating", minimum=0, maximum=100),
            min_feedback_count=r.integer("min_feedback_count"),
            conditions=r.strings("conditions", choices=CONDITIONS),
            ships_from=r.strings("ships_from", upper=True),
            max_handling_hours=r.integer("max_handling_hours"),
            exclude_amazon=r.boolean("exclude_amazon"),
            exclude_sellers=exclude,
            only_sellers=only,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fulfillment": self.fulfillment,
            "min_feedback_rating": self.min_feedback_rating,
            "min_feedback_count": self.min_feedback_count,
            "conditions": sorted(self.conditions),
            "ships_from": sorted(self.ships_from),
            "max_handling_hours": self.max_handling_hours,
            "exclude_amazon": self.exclude_amazon,
            "exclude_sellers": sorted(self.exclude_sellers),
            "only_sellers": sorted(self.only_sellers),
        }


@dataclass(frozen=True, slots=True)
class BuyBoxProbe:
    """When we hold the Buy Box, raise by a step (amount or percent of our price) up to the max price."""

    amount: Decimal | None = None
    percent: Decimal | None = None
    when_sharing: str = "hold"
    sharing_below: float = 0.9

    @classmethod
    def from_dict(cls, data: object, path: str = "buy_box_probe") -> BuyBoxProbe:
        r = _Reader(data, path, ("amount", "percent", "when_sharing", "sharing_below"))
        amount = r.decimal("amount", exclusive_minimum=True)
        percent = r.decimal("percent", exclusive_minimum=True, maximum=HUNDRED)
        if (amount is None) == (percent is None):
            raise RuleError(r.at("amount"), "give exactly one of amount or percent")
        sharing_below = r.number("sharing_below", minimum=0, maximum=1)
        return cls(
            amount=amount,
            percent=percent,
            when_sharing=r.choice("when_sharing", SHARING, "hold"),
            sharing_below=0.9 if sharing_below is None else sharing_below,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "amount": _dec(self.amount),
            "percent": _dec(self.percent),
            "when_sharing": self.when_sharing,
            "sharing_below": self.sharing_below,
        }


@dataclass(frozen=True, slots=True)
class Velocity:
    """Units sold in the last 7 days against a target: faster → raise, slower → lower."""

    target_units_7d: int
    raise_percent: Decimal = ZERO
    lower_percent: Decimal = ZERO
    tolerance_percent: Decimal = ZERO

    @classmethod
    def from_dict(cls, data: object, path: str = "velocity") -> Velocity:
        r = _Reader(data, path, ("target_units_7d", "raise_percent", "lower_percent", "tolerance_percent"))
        target = r.integer("target_units_7d")
        if target is None:
            raise RuleError(r.at("target_units_7d"), "is required")
        raise_percent = r.decimal("raise_percent", maximum=HUNDRED) or ZERO
        lower_percent = r.decimal("lower_percent", maximum=HUNDRED, exclusive_maximum=True) or ZERO
        if not raise_percent and not lower_percent:
            raise RuleError(r.at("raise_percent"), "give raise_percent and/or lower_percent")
        return cls(
            target_units_7d=target,
            raise_percent=raise_percent,
            lower_percent=lower_percent,
            tolerance_percent=r.decimal("tolerance_percent", maximum=HUNDRED) or ZERO,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_units_7d": self.target_units_7d,
            "raise_percent": str(self.raise_percent),
            "lower_percent": str(self.lower_percent),
            "tolerance_percent": str(self.tolerance_percent),
        }


@dataclass(frozen=True, slots=True)
class Inventory:
    """Stock-aware adjustments: short cover → raise; excess cover or aged stock → lower (the larger)."""

    low_days_of_cover: float | None = None
    raise_percent: Decimal | None = None
    high_days_of_cover: float | None = None
    lower_percent: Decimal | None = None
    aged_units_min: int | None = None
    aged_lower_percent: Decimal | None = None

    @classmethod
    def from_dict(cls, data: object, path: str = "inventory") -> Inventory:
        r = _Reader(
            data,
            path,
            (
                "low_days_of_cover", "raise_percent", "high_days_of_cover", "lower_percent",
                "aged_units_min", "aged_lower_percent",
            ),
        )  # fmt: skip
        low = r.number("low_days_of_cover", minimum=0)
        high = r.number("high_days_of_cover", minimum=0)
        aged = r.integer("aged_units_min", minimum=1)
        raise_percent = r.decimal("raise_percent", exclusive_minimum=True, maximum=HUNDRED)
        lower_percent = r.decimal(
            "lower_percent", exclusive_minimum=True, maximum=HUNDRED, exclusive_maximum=True
        )
        aged_percent = r.decimal(
            "aged_lower_percent", exclusive_minimum=True, maximum=HUNDRED, exclusive_maximum=True
        )
        for threshold, percent, name in (
            (low, raise_percent, "raise_percent"),
            (high, lower_percent, "lower_percent"),
            (aged, aged_percent, "aged_lower_percent"),
        ):
            if (threshold is None) != (percent is None):
                raise RuleError(r.at(name), "goes together with its threshold")
        if low is None and high is None and aged is None:
            raise RuleError(path, "set low_days_of_cover, high_days_of_cover or aged_units_min")
        if low is not None and high is not None and low >= high:
            raise RuleError(r.at("high_days_of_cover"), "must be greater than low_days_of_cover")
        return cls(low, raise_percent, high, lower_percent, aged, aged_percent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "low_days_of_cover": self.low_days_of_cover,
            "raise_percent": _dec(self.raise_percent),
            "high_days_of_cover": self.high_days_of_cover,
            "lower_percent": _dec(self.lower_percent),
            "aged_units_min": self.aged_units_min,
            "aged_lower_percent": _dec(self.aged_lower_percent),
        }


def _minutes(r: _Reader, key: str) -> int:
    value = r.raw(key)
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise RuleError(r.at(key), 'must be a time "HH:MM" (00:00 to 24:00)')
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """Days (0 = Monday) and a time window in minutes after midnight, local to the schedule's timezone;
    ``end`` before ``start`` runs past midnight into the next day. Either adjusts the target by
    ``adjust_percent`` (signed) or pauses repricing."""

    days: tuple[int, ...]
    start: int
    end: int
    adjust_percent: Decimal | None = None
    pause: bool = False

    @classmethod
    def from_dict(cls, data: object, path: str) -> ScheduleEntry:
        r = _Reader(data, path, ("days", "start", "end", "adjust_percent", "pause"))
        names = r.strings("days", choices=DAYS)
        if not names:
            raise RuleError(r.at("days"), f"name at least one day ({', '.join(DAYS)})")
        start, end = _minutes(r, "start"), _minutes(r, "end")
        if start == end or start == 24 * 60:
            raise RuleError(r.at("end"), "the window is empty")
        adjust = r.decimal("adjust_percent", minimum=-HUNDRED, maximum=HUNDRED, exclusive_minimum=True)
        pause = r.boolean("pause")
        if pause == (adjust is not None):
            raise RuleError(r.at("adjust_percent"), "give either adjust_percent or pause: true")
        return cls(tuple(sorted(DAYS.index(name) for name in names)), start, end, adjust, pause)

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": [DAYS[day] for day in self.days],
            "start": _hhmm(self.start),
            "end": _hhmm(self.end),
            "adjust_percent": _dec(self.adjust_percent),
            "pause": self.pause,
        }

    def matches(self, weekday: int, minute: int) -> bool:
        """Is local (weekday, minute of the day) inside this window?"""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        # Past midnight: the evening part belongs to the named day, the morning part to the day after.
        if minute >= self.start:
            return weekday in self.days
        return minute < self.end and (weekday - 1) % 7 in self.days


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Schedule:
    timezone: str
    entries: tuple[ScheduleEntry, ...]

    @classmethod
    def from_dict(cls, data: object, path: str = "schedule") -> Schedule:
        r = _Reader(data, path, ("timezone", "entries"))
        name = r.raw("timezone")
        if not isinstance(name, str) or not name:
            raise RuleError(r.at("timezone"), "is required (an IANA name such as Europe/Berlin)")
        try:
            zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise RuleError(r.at("timezone"), f"unknown time zone {name!r}") from None
        entries = r.raw("entries")
        if not isinstance(entries, list) or not entries:
            raise RuleError(r.at("entries"), "must be a non-empty list")
        return cls(
            name, tuple(ScheduleEntry.from_dict(e, f"{r.at('entries')}[{i}]") for i, e in enumerate(entries))
        )

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "entries": [entry.to_dict() for entry in self.entries]}


@dataclass(frozen=True, slots=True)
class Bounds:
    """What to do when the target falls outside the SKU's [min, max]: "bound" moves to the bound,
    "hold" keeps the current price."""

    out_of_bounds: str = "bound"

    @classmethod
    def from_dict(cls, data: object, path: str = "bounds") -> Bounds:
        r = _Reader(data, path, ("out_of_bounds",))
        return cls(out_of_bounds=r.choice("out_of_bounds", OUT_OF_BOUNDS, "bound"))

    def to_dict(self) -> dict[str, Any]:
        return {"out_of_bounds": self.out_of_bounds}


@dataclass(frozen=True, slots=True)
class Limit:
    """A largest change: an amount, a percent (of the reference price), or both (the tighter wins)."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    @classmethod
    def from_dict(cls, data: object, path: str) -> Limit:
        r = _Reader(data, path, ("amount", "percent"))
        amount = r.decimal("amount", exclusive_minimum=True)
        percent = r.decimal("percent", exclusive_minimum=True, maximum=HUNDRED)
        if amount is None and percent is None:
            raise RuleError(r.at("amount"), "give an amount and/or a percent")
        return cls(amount, percent)

    def to_dict(self) -> dict[str, Any]:
        return {"amount": _dec(self.amount), "percent": _dec(self.percent)}


@dataclass(frozen=True, slots=True)
class PriceWar:
    """``undercuts`` competitor undercuts within ``window_seconds`` pause the SKU for ``pause_seconds``."""

    undercuts: int
    window_seconds: int
    pause_seconds: int

    @classmethod
    def from_dict(cls, data: object, path: str = "guards.price_war") -> PriceWar:
        r = _Reader(data, path, ("undercuts", "window_seconds", "pause_seconds"))
        values = {}
        for key in ("undercuts", "window_seconds", "pause_seconds"):
            value = r.integer(key, minimum=1)
            if value is None:
                raise RuleError(r.at(key), "is required")
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "undercuts": self.undercuts,
            "window_seconds": self.window_seconds,
            "pause_seconds": self.pause_seconds,
        }


@dataclass(frozen=True, slots=True)
class Guards:
    max_step: Limit | None = None
    max_daily: Limit | None = None
    cooldown_seconds: int = 0
    price_war: PriceWar | None = None
    anomaly_percent: Decimal | None = None

    @classmethod
    def from_dict(cls, data: object, path: str = "guards") -> Guards:
        r = _Reader(data, path, ("max_step", "max_daily", "cooldown_seconds", "price_war", "anomaly"))
        anomaly = r.raw("anomaly")
        anomaly_percent = None
        if anomaly is not None:
            a = _Reader(anomaly, r.at("anomaly"), ("percent",))
            anomaly_percent = a.decimal("percent", exclusive_minimum=True, required=True)
        return cls(
            max_step=None
            if r.raw("max_step") is None
            else Limit.from_dict(r.raw("max_step"), r.at("max_step")),
            max_daily=None
            if r.raw("max_daily") is None
            else Limit.from_dict(r.raw("max_daily"), r.at("max_daily")),
            cooldown_seconds=r.integer("cooldown_seconds", default=0) or 0,
            price_war=None
            if r.raw("price_war") is None
            else PriceWar.from_dict(r.raw("price_war"), r.at("price_war")),
            anomaly_percent=anomaly_percent,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_step": None if self.max_step is None else self.max_step.to_dict(),
            "max_daily": None if self.max_daily is None else self.max_daily.to_dict(),
            "cooldown_seconds": self.cooldown_seconds,
            "price_war": None if self.price_war is None else self.price_war.to_dict(),
            "anomaly": None if self.anomaly_percent is None else {"percent": str(self.anomaly_percent)},
        }


_SECTIONS = (
    "strategy", "filters", "buy_box_probe", "velocity", "inventory", "schedule", "bounds", "guards",
    "dry_run",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """The seller's repricing configuration (JSON shape in the module docstring)."""

    strategy: Strategy
    filters: Filters = Filters()
    buy_box_probe: BuyBoxProbe | None = None
    velocity: Velocity | None = None
    inventory: Inventory | None = None
    schedule: Schedule | None = None
    bounds: Bounds = Bounds()
    guards: Guards = Guards()
    dry_run: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Parse and validate; raises `RuleError` naming the first bad field."""
        r = _Reader(data, "", _SECTIONS)
        if r.raw("strategy") is None:
            raise RuleError("strategy", "is required")
        strategy = Strategy.from_dict(r.raw("strategy"))
        filters = Filters() if r.raw("filters") is None else Filters.from_dict(r.raw("filters"))
        if strategy.kind == "lowest_fba" and filters.fulfillment == "FBM":
            raise RuleError("filters.fulfillment", "FBM leaves no offer for the lowest_fba strategy")

        def section(name: str, parser: Any) -> Any:
            value = r.raw(name)
            return None if value is None else parser(value)

        return cls(
            strategy=strategy,
            filters=filters,
            buy_box_probe=section("buy_box_probe", BuyBoxProbe.from_dict),
            velocity=section("velocity", Velocity.from_dict),
            inventory=section("inventory", Inventory.from_dict),
            schedule=section("schedule", Schedule.from_dict),
            bounds=section("bounds", Bounds.from_dict) or Bounds(),
            guards=section("guards", Guards.from_dict) or Guards(),
            dry_run=r.boolean("dry_run"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every key present); `from_dict` of it gives an equal rule."""
        return {
            "strategy": self.strategy.to_dict(),
            "filters": self.filters.to_dict(),
            "buy_box_probe": None if self.buy_box_probe is None else self.buy_box_probe.to_dict(),
            "velocity": None if self.velocity is None else self.velocity.to_dict(),
            "inventory": None if self.inventory is None else self.inventory.to_dict(),
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
            "bounds": self.bounds.to_dict(),
            "guards": self.guards.to_dict(),
            "dry_run": self.dry_run,
        }
