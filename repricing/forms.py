"""Dashboard forms for repricing. They parse input; `repricing/services.py` validates again and writes.

`RuleForm` is the seller's way to write a rule: one field per option of the engine's rule, grouped as
the page shows them, turned into the engine's JSON (`RuleForm.config()`) and checked by the engine
itself (`Rule.from_dict`), whose error names the dotted field; `RULE_FIELD_FOR` maps it back onto the
form field so the message appears next to the right input.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError

from accounts.forms import NoColonLabels
from repricing.display import DAY_NAMES, schedule_entry_text
from repricing.engine import Rule, RuleError
from repricing.engine.rules import ALONE, CONDITIONS, NO_BUY_BOX
from repricing.models import PriceDecision, RepricingRule, SkuPricing

TIMEZONES = sorted(available_timezones())


def _rules_choices(rules: Any, empty: str) -> list[tuple[str, str]]:
    return [("", empty)] + [
        (str(rule.public_id), rule.name + ("" if rule.is_active else " (inactive)")) for rule in rules
    ]


def _choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


def _money(label: str, **kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        **kwargs,
    )


def _percent(label: str, maximum: int = 100, minimum: str = "0.01", **kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        max_digits=7,
        decimal_places=3,
        min_value=Decimal(minimum),
        max_value=Decimal(maximum),
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        **kwargs,
    )


def _whole(label: str, minimum: int = 0, **kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, min_value=minimum, **kwargs)


def _ids(value: str) -> list[str]:
    """Seller ids or country codes typed with commas, spaces or new lines."""
    return [item for item in re.split(r"[\s,;]+", value or "") if item]


# --- Company switches ------------------------------------------------------------------------------------


class KillSwitchForm(NoColonLabels, forms.Form):
    on = forms.TypedChoiceField(
        choices=[("on", "Stop all price changes"), ("off", "Allow price changes again")],
        coerce=lambda value: value == "on",
        widget=forms.HiddenInput,
    )
    reason = forms.CharField(
        label="Why (shown to your team)",
        required=False,
        max_length=500,
        help_text="E.g. “Supplier price changed, checking costs”.",
    )


class CompanySettingsForm(NoColonLabels, forms.Form):
    dry_run = forms.BooleanField(
        label="Dry run for the whole company",
        required=False,
        help_text="Decide and show every price, but send nothing to Amazon.",
    )
    default_rule = forms.ChoiceField(
        label="Default rule",
        required=False,
        help_text="Used for every SKU without a rule of its own or through a tag.",
    )
    timezone = forms.ChoiceField(
        label="Your time zone",
        choices=[(name, name) for name in TIMEZONES],
        help_text="Daily limits count from midnight here.",
    )

    def __init__(self, *args: Any, rules: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        active = [rule for rule in rules if rule.is_active]
        _choices(self, "default_rule", _rules_choices(active, "No default rule"))


# --- Rules -----------------------------------------------------------------------------------------------

_OFFSET_UNITS = [("amount", "by an amount"), ("percent", "by a percent")]
_STEP_UNITS = [("amount", "Amount"), ("percent", "Percent of our price")]


class RuleForm(NoColonLabels, forms.Form):
    """A repricing rule, field by field. `config()` is the engine's JSON (valid once `is_valid()`)."""

    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    is_active = forms.BooleanField(
        label="Active", required=False, initial=True, help_text="Inactive rules are skipped."
    )
    dry_run = forms.BooleanField(
        label="Dry run for this rule",
        required=False,
        help_text="Decide and explain, but never send these prices to Amazon.",
    )

    # Strategy
    strategy_kind = forms.ChoiceField(
        label="Price against",
        choices=[
            ("buy_box", "The Buy Box"),
            ("lowest", "The lowest offer"),
            ("lowest_fba", "The lowest FBA offer"),
            ("named_competitors", "Named competitors"),
            ("current", "Our current price (adjustments only)"),
        ],
        initial="buy_box",
    )
    strategy_mode = forms.ChoiceField(
        label="How",
        choices=[("match", "Match it"), ("beat", "Go below it"), ("above", "Stay above it")],
        initial="match",
    )
    strategy_unit = forms.ChoiceField(label="Offset", choices=_OFFSET_UNITS, initial="amount", required=False)
    strategy_offset = forms.DecimalField(
        label="By",
        required=False,
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
        help_text="For “go below” or “stay above”: an amount in the listing's currency, or a percent.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    competitors = forms.CharField(
        label="Competitors (seller ids)",
        required=False,
        help_text="For “named competitors”: their seller ids, separated by commas.",
    )
    when_no_buy_box = forms.ChoiceField(
        label="When nobody holds the Buy Box",
        choices=list(
            zip(
                NO_BUY_BOX,
                (
                    "Price against the lowest offer",
                    "Keep the price",
                    "Go to the min price",
                    "Go to the max price",
                ),
                strict=True,
            )
        ),
        initial="lowest",
    )
    when_alone = forms.ChoiceField(
        label="When no competitor is left",
        choices=list(
            zip(ALONE, ("Keep the price", "Go to the min price", "Go to the max price"), strict=True)
        ),
        initial="hold",
    )

    # Which competitors count
    fulfillment = forms.ChoiceField(
        label="Fulfilment",
        choices=[("any", "Any"), ("FBA", "FBA only"), ("FBM", "Merchant-fulfilled only")],
        initial="any",
    )
    min_feedback_rating = _percent("Minimum positive feedback (%)", minimum="0")
    min_feedback_count = _whole("Minimum number of ratings")
    conditions = forms.MultipleChoiceField(
        label="Conditions",
        required=False,
        choices=[(c, c.capitalize()) for c in CONDITIONS],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the listing's own condition.",
    )
    ships_from = forms.CharField(
        label="Ships from (country codes)", required=False, help_text="E.g. US, CA. Empty: anywhere."
    )
    max_handling_hours = _whole("Longest handling time (hours)")
    exclude_amazon = forms.BooleanField(label="Ignore Amazon's own offer", required=False)
    exclude_sellers = forms.CharField(label="Ignore these sellers (ids)", required=False)
    only_sellers = forms.CharField(label="Only these sellers (ids)", required=False)

    # Buy Box probe
    probe_enabled = forms.BooleanField(
        label="When we hold the Buy Box, raise the price step by step", required=False
    )
    probe_unit = forms.ChoiceField(label="Step", choices=_STEP_UNITS, initial="amount", required=False)
    probe_step = forms.DecimalField(
        label="Step size",
        required=False,
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    probe_when_sharing = forms.ChoiceField(
        label="When the Buy Box is shared",
        choices=[("hold", "Keep the price"), ("probe", "Raise anyway")],
        initial="hold",
        required=False,
    )
    probe_sharing_below = _percent(
        "Shared means held less than (% of the time)", minimum="0", initial=Decimal(90)
    )

    # Sales pace
    velocity_enabled = forms.BooleanField(label="Adjust to the sales pace", required=False)
    velocity_target_units_7d = _whole("Target units sold in 7 days")
    velocity_raise_percent = _percent("Selling faster: raise by (%)", minimum="0")
    velocity_lower_percent = _percent("Selling slower: lower by (%)", minimum="0", maximum=99)
    velocity_tolerance_percent = _percent("On target within ± (%)", minimum="0")

    # Stock
    inventory_enabled = forms.BooleanField(label="Adjust to stock levels", required=False)
    low_days_of_cover = forms.DecimalField(
        label="Low stock: under (days of cover)", required=False, min_value=0
    )
    inventory_raise_percent = _percent("then raise by (%)")
    high_days_of_cover = forms.DecimalField(
        label="Excess stock: over (days of cover)", required=False, min_value=0
    )
    inventory_lower_percent = _percent("then lower by (%)", maximum=99)
    aged_units_min = _whole("Aged stock: at least (units)", minimum=1)
    aged_lower_percent = _percent("then lower by (%)", maximum=99)

    # Schedule
    schedule_enabled = forms.BooleanField(label="Follow a weekly schedule", required=False)
    schedule_timezone = forms.ChoiceField(
        label="Schedule time zone",
        choices=[(name, name) for name in TIMEZONES],
        initial="UTC",
        required=False,
    )
    schedule_entries = forms.CharField(
        label="Schedule",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One window per line: days, hours, then a percent or “pause”. E.g. "
        "“sat,sun 00:00-24:00 +3%” or “mon-fri 22:00-06:00 pause” (past midnight runs into the next day).",
    )

    # Bounds and guards
    out_of_bounds = forms.ChoiceField(
        label="When the target is outside the SKU's min/max",
        choices=[("bound", "Go to the nearest bound"), ("hold", "Keep the price")],
        initial="bound",
    )
    max_step_amount = _money("Largest change per step (amount)")
    max_step_percent = _percent("Largest change per step (%)")
    max_daily_amount = _money("Largest change per day (amount)")
    max_daily_percent = _percent("Largest change per day (%)")
    cooldown_minutes = forms.DecimalField(
        label="Minutes between changes", required=False, min_value=0, max_digits=9, decimal_places=2
    )
    price_war_enabled = forms.BooleanField(label="Pause on a price war", required=False)
    price_war_undercuts = _whole("Undercuts", minimum=1)
    price_war_window_minutes = _whole("within (minutes)", minimum=1)
    price_war_pause_minutes = _whole("pause for (minutes)", minimum=1)
    anomaly_percent = _percent("Hold and alert on a move of (%) or more", maximum=1000)

    #: The engine's dotted field (prefix) → the form field showing its error.
    RULE_FIELD_FOR: dict[str, str] = {
        "strategy.kind": "strategy_kind",
        "strategy.mode": "strategy_mode",
        "strategy.amount": "strategy_offset",
        "strategy.percent": "strategy_offset",
        "strategy.competitors": "competitors",
        "strategy.when_no_buy_box": "when_no_buy_box",
        "strategy.when_alone": "when_alone",
        "filters.fulfillment": "fulfillment",
        "filters.min_feedback_rating": "min_feedback_rating",
        "filters.min_feedback_count": "min_feedback_count",
        "filters.conditions": "conditions",
        "filters.ships_from": "ships_from",
        "filters.max_handling_hours": "max_handling_hours",
        "filters.exclude_sellers": "exclude_sellers",
        "filters.only_sellers": "only_sellers",
        "buy_box_probe.amount": "probe_step",
        "buy_box_probe.percent": "probe_step",
        "buy_box_probe.sharing_below": "probe_sharing_below",
        "velocity.target_units_7d": "velocity_target_units_7d",
        "velocity.raise_percent": "velocity_raise_percent",
        "velocity.lower_percent": "velocity_lower_percent",
        "velocity.tolerance_percent": "velocity_tolerance_percent",
        "inventory.low_days_of_cover": "low_days_of_cover",
        "inventory.raise_percent": "inventory_raise_percent",
        "inventory.high_days_of_cover": "high_days_of_cover",
        "inventory.lower_percent": "inventory_lower_percent",
        "inventory.aged_units_min": "aged_units_min",
        "inventory.aged_lower_percent": "aged_lower_percent",
        "inventory": "low_days_of_cover",
        "schedule.timezone": "schedule_timezone",
        "schedule": "schedule_entries",
        "guards.max_step": "max_step_amount",
        "guards.max_step.percent": "max_step_percent",
        "guards.max_daily": "max_daily_amount",
        "guards.max_daily.percent": "max_daily_percent",
        "guards.cooldown_seconds": "cooldown_minutes",
        "guards.price_war.undercuts": "price_war_undercuts",
        "guards.price_war.window_seconds": "price_war_window_minutes",
        "guards.price_war.pause_seconds": "price_war_pause_minutes",
        "guards.anomaly": "anomaly_percent",
        "filters": "fulfillment",
    }

    #: Sections of the page: (title, fields), for the template.
    SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("basics", "Rule", ("name", "description", "is_active", "dry_run")),
        (
            "strategy",
            "Strategy",
            (
                "strategy_kind",
                "strategy_mode",
                "strategy_unit",
                "strategy_offset",
                "competitors",
                "when_no_buy_box",
                "when_alone",
            ),
        ),
        (
            "filters",
            "Which competitors count",
            (
                "fulfillment",
                "min_feedback_rating",
                "min_feedback_count",
                "conditions",
                "ships_from",
                "max_handling_hours",
                "exclude_amazon",
                "exclude_sellers",
                "only_sellers",
            ),
        ),
        (
            "probe",
            "Holding the Buy Box",
            ("probe_enabled", "probe_unit", "probe_step", "probe_when_sharing", "probe_sharing_below"),
        ),
        (
            "velocity",
            "Sales pace",
            (
                "velocity_enabled",
                "velocity_target_units_7d",
                "velocity_raise_percent",
                "velocity_lower_percent",
                "velocity_tolerance_percent",
            ),
        ),
        (
            "inventory",
            "Stock",
            (
                "inventory_enabled",
                "low_days_of_cover",
                "inventory_raise_percent",
                "high_days_of_cover",
                "inventory_lower_percent",
                "aged_units_min",
                "aged_lower_percent",
            ),
        ),
        ("schedule", "Schedule", ("schedule_enabled", "schedule_timezone", "schedule_entries")),
        (
            "guards",
            "Bounds and guards",
            (
                "out_of_bounds",
                "max_step_amount",
                "max_step_percent",
                "max_daily_amount",
                "max_daily_percent",
                "cooldown_minutes",
                "price_war_enabled",
                "price_war_undercuts",
                "price_war_window_minutes",
                "price_war_pause_minutes",
                "anomaly_percent",
            ),
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config: dict[str, Any] | None = None

    # --- from a stored rule -----------------------------------------------------------------------------

    @classmethod
    def initial_for(cls, rule: RepricingRule) -> dict[str, Any]:
        """The form's initial values for a stored rule (its canonical config)."""
        c = rule.config
        s, f = c.get("strategy") or {}, c.get("filters") or {}
        g = c.get("guards") or {}
        initial: dict[str, Any] = {
            "name": rule.name,
            "description": rule.description,
            "is_active": rule.is_active,
            "dry_run": bool(c.get("dry_run")),
            "strategy_kind": s.get("kind", "buy_box"),
            "strategy_mode": s.get("mode", "match"),
            "strategy_unit": "percent" if s.get("percent") is not None else "amount",
            "strategy_offset": s.get("percent") if s.get("percent") is not None else s.get("amount"),
            "competitors": ", ".join(s.get("competitors") or []),
            "when_no_buy_box": s.get("when_no_buy_box", "lowest"),
            "when_alone": s.get("when_alone", "hold"),
            "fulfillment": f.get("fulfillment", "any"),
            "min_feedback_rating": f.get("min_feedback_rating"),
            "min_feedback_count": f.get("min_feedback_count"),
            "conditions": f.get("conditions") or [],
            "ships_from": ", ".join(f.get("ships_from") or []),
            "max_handling_hours": f.get("max_handling_hours"),
            "exclude_amazon": bool(f.get("exclude_amazon")),
            "exclude_sellers": ", ".join(f.get("exclude_sellers") or []),
            "only_sellers": ", ".join(f.get("only_sellers") or []),
            "out_of_bounds": (c.get("bounds") or {}).get("out_of_bounds", "bound"),
        }
        probe = c.get("buy_box_probe")
        if probe:
            initial.update(
                probe_enabled=True,
                probe_unit="percent" if probe.get("percent") is not None else "amount",
                probe_step=probe.get("percent") if probe.get("percent") is not None else probe.get("amount"),
                probe_when_sharing=probe.get("when_sharing", "hold"),
                probe_sharing_below=Decimal(str(probe.get("sharing_below", 0.9))) * 100,
            )
        velocity = c.get("velocity")
        if velocity:
            initial.update(
                velocity_enabled=True,
                velocity_target_units_7d=velocity.get("target_units_7d"),
                velocity_raise_percent=velocity.get("raise_percent"),
                velocity_lower_percent=velocity.get("lower_percent"),
                velocity_tolerance_percent=velocity.get("tolerance_percent"),
            )
        inventory = c.get("inventory")
        if inventory:
            initial.update(
                inventory_enabled=True,
                low_days_of_cover=inventory.get("low_days_of_cover"),
                inventory_raise_percent=inventory.get("raise_percent"),
                high_days_of_cover=inventory.get("high_days_of_cover"),
                inventory_lower_percent=inventory.get("lower_percent"),
                aged_units_min=inventory.get("aged_units_min"),
                aged_lower_percent=inventory.get("aged_lower_percent"),
            )
        schedule = c.get("schedule")
        if schedule:
            initial.update(
                schedule_enabled=True,
                schedule_timezone=schedule.get("timezone"),
                schedule_entries="\n".join(schedule_entry_text(e) for e in schedule.get("entries") or []),
            )
        for name in ("max_step", "max_daily"):
            limit = g.get(name) or {}
            initial[f"{name}_amount"] = limit.get("amount")
            initial[f"{name}_percent"] = limit.get("percent")
        if g.get("cooldown_seconds"):
            initial["cooldown_minutes"] = (Decimal(g["cooldown_seconds"]) / 60).quantize(Decimal("0.01"))
        war = g.get("price_war")
        if war:
            initial.update(
                price_war_enabled=True,
                price_war_undercuts=war["undercuts"],
                price_war_window_minutes=max(1, round(war["window_seconds"] / 60)),
                price_war_pause_minutes=max(1, round(war["pause_seconds"] / 60)),
            )
        if g.get("anomaly"):
            initial["anomaly_percent"] = g["anomaly"]["percent"]
        return initial

    # --- to the engine's JSON ---------------------------------------------------------------------------

    def _require(self, data: dict[str, Any], names: tuple[str, ...], message: str) -> bool:
        missing = [name for name in names if data.get(name) in (None, "")]
        for name in missing:
            self.add_error(name, message)
        return not missing

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        config = self._build(data)
        if self.errors:
            return data
        try:
            self._config = Rule.from_dict(config).to_dict()
        except RuleError as error:
            self._engine_error(error)
        return data

    def _engine_error(self, error: RuleError) -> None:
        message = str(error)
        if error.field and message.startswith(f"{error.field}: "):
            message = message[len(error.field) + 2 :]
        message = message[:1].upper() + message[1:] + "."
        line = re.search(r"\[(\d+)\]", error.field)
        if line:
            message = f"Line {int(line.group(1)) + 1}: {message}"
        path = re.sub(r"\[\d+\].*$", "", error.field)
        while path:
            if path in self.RULE_FIELD_FOR:
                self.add_error(self.RULE_FIELD_FOR[path], message)
                return
            path = path.rpartition(".")[0]
        self.add_error(None, f"{error.field}: {message}" if error.field else message)

    def _offset(self, data: dict[str, Any], unit_field: str, value_field: str) -> dict[str, str | None]:
        value = data.get(value_field)
        if value is None:
            return {"amount": None, "percent": None}
        unit = data.get(unit_field) or "amount"
        return {
            "amount": str(value) if unit == "amount" else None,
            "percent": str(value) if unit == "percent" else None,
        }

    def _build(self, d: dict[str, Any]) -> dict[str, Any]:
        kind, mode = d["strategy_kind"], d["strategy_mode"]
        if mode != "match" and kind != "current":
            self._require(d, ("strategy_offset",), "Enter how far from the competitor to price.")
        strategy: dict[str, Any] = {
            "kind": kind,
            "mode": mode,
            "when_no_buy_box": d["when_no_buy_box"],
            "when_alone": d["when_alone"],
            "competitors": _ids(d.get("competitors", "")),
        }
        if mode != "match":
            strategy.update(self._offset(d, "strategy_unit", "strategy_offset"))
        if kind == "named_competitors" and not strategy["competitors"]:
            self.add_error("competitors", "Name at least one competitor (their seller id).")
        if kind != "named_competitors":
            strategy["competitors"] = []  # typed but not used by this strategy
        rating = d.get("min_feedback_rating")
        config: dict[str, Any] = {
            "strategy": strategy,
            "filters": {
                "fulfillment": d["fulfillment"],
                "min_feedback_rating": None if rating is None else float(rating),
                "min_feedback_count": d.get("min_feedback_count"),
                "conditions": list(d.get("conditions") or []),
                "ships_from": _ids(d.get("ships_from", "")),
                "max_handling_hours": d.get("max_handling_hours"),
                "exclude_amazon": bool(d.get("exclude_amazon")),
                "exclude_sellers": _ids(d.get("exclude_sellers", "")),
                "only_sellers": _ids(d.get("only_sellers", "")),
            },
            "bounds": {"out_of_bounds": d["out_of_bounds"]},
            "dry_run": bool(d.get("dry_run")),
        }
        if d.get("probe_enabled") and self._require(d, ("probe_step",), "Enter the step size."):
            sharing = d.get("probe_sharing_below")
            config["buy_box_probe"] = {
                **self._offset(d, "probe_unit", "probe_step"),
                "when_sharing": d.get("probe_when_sharing") or "hold",
                "sharing_below": 0.9 if sharing is None else float(sharing / 100),
            }
        if d.get("velocity_enabled") and self._require(
            d, ("velocity_target_units_7d",), "Enter the units you aim to sell in 7 days."
        ):
            config["velocity"] = {
                "target_units_7d": d["velocity_target_units_7d"],
                "raise_percent": str(d.get("velocity_raise_percent") or 0),
                "lower_percent": str(d.get("velocity_lower_percent") or 0),
                "tolerance_percent": str(d.get("velocity_tolerance_percent") or 0),
            }
        if d.get("inventory_enabled"):
            low, high = d.get("low_days_of_cover"), d.get("high_days_of_cover")
            config["inventory"] = {
                "low_days_of_cover": None if low is None else float(low),
                "raise_percent": _text(d.get("inventory_raise_percent")),
                "high_days_of_cover": None if high is None else float(high),
                "lower_percent": _text(d.get("inventory_lower_percent")),
                "aged_units_min": d.get("aged_units_min"),
                "aged_lower_percent": _text(d.get("aged_lower_percent")),
            }
        if d.get("schedule_enabled"):
            try:
                entries = parse_schedule(d.get("schedule_entries", ""))
            except ValidationError as error:
                self.add_error("schedule_entries", error)
            else:
                config["schedule"] = {"timezone": d.get("schedule_timezone") or "UTC", "entries": entries}
        guards: dict[str, Any] = {"cooldown_seconds": 0}
        for name in ("max_step", "max_daily"):
            amount, percent = d.get(f"{name}_amount"), d.get(f"{name}_percent")
            if amount is not None or percent is not None:
                guards[name] = {"amount": _text(amount), "percent": _text(percent)}
        if d.get("cooldown_minutes"):
            guards["cooldown_seconds"] = round(d["cooldown_minutes"] * 60)
        if d.get("price_war_enabled") and self._require(
            d,
            ("price_war_undercuts", "price_war_window_minutes", "price_war_pause_minutes"),
            "Needed for the price-war pause.",
        ):
            guards["price_war"] = {
                "undercuts": d["price_war_undercuts"],
                "window_seconds": d["price_war_window_minutes"] * 60,
                "pause_seconds": d["price_war_pause_minutes"] * 60,
            }
        if d.get("anomaly_percent") is not None:
            guards["anomaly"] = {"percent": str(d["anomaly_percent"])}
        config["guards"] = guards
        return config

    def config(self) -> dict[str, Any]:
        """The engine's canonical JSON of the rule (call after `is_valid()` returned True)."""
        assert self._config is not None, "config() needs a valid form"
        return self._config


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


_DAY_RANGE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)-(mon|tue|wed|thu|fri|sat|sun)$")
_DAY_WORDS = {
    "daily": DAY_NAMES,
    "every": DAY_NAMES,
    "weekdays": DAY_NAMES[:5],
    "weekends": DAY_NAMES[5:],
    "weekend": DAY_NAMES[5:],
}
_LINE = re.compile(
    r"^(?P<days>[a-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+"
    r"(?P<what>pause|[+-]?\d+(?:\.\d+)?\s*%?)$"
)


def _days(text: str) -> list[str]:
    days: list[str] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if part in _DAY_WORDS:
            days.extend(_DAY_WORDS[part])
        elif part in DAY_NAMES:
            days.append(part)
        elif match := _DAY_RANGE.match(part):
            first, last = DAY_NAMES.index(match.group(1)), DAY_NAMES.index(match.group(2))
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
            days.extend(DAY_NAMES[i] for i in span)
        else:
            raise ValueError(part)
    return sorted(set(days), key=DAY_NAMES.index)


def parse_schedule(text: str) -> list[dict[str, Any]]:
    """The schedule textarea → the engine's entries; errors name the line."""
    entries = []
    lines = [line.strip().lower() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValidationError("Add at least one line, e.g. “sat,sun 00:00-24:00 +3%”.")
    for number, line in enumerate(lines, start=1):
        match = _LINE.match(line)
        if match is None:
            raise ValidationError(
                f"Line {number} (“{line}”): write days, hours and a percent or “pause”, "
                "e.g. “mon-fri 09:00-17:00 -2%”."
            )
        try:
            days = _days(match.group("days"))
        except ValueError as error:
            raise ValidationError(
                f"Line {number}: “{error}” is not a day (mon … sun, mon-fri, weekdays, weekends, daily)."
            ) from None
        start, end = (f"{int(t.split(':')[0]):02d}:{t.split(':')[1]}" for t in (match["start"], match["end"]))
        what = match.group("what").replace(" ", "")
        entry: dict[str, Any] = {"days": days, "start": start, "end": end}
        if what == "pause":
            entry["pause"] = True
        else:
            entry["adjust_percent"] = what.rstrip("%").lstrip("+")
        entries.append(entry)
    return entries


class TagRuleForm(NoColonLabels, forms.Form):
    tag = forms.CharField(label="Tag", max_length=100)
    rule = forms.ChoiceField(label="Rule")
    priority = forms.IntegerField(
        label="Priority", min_value=0, initial=100, help_text="When a SKU has several tags, the lowest wins."
    )

    def __init__(self, *args: Any, rules: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "rule", _rules_choices(rules, "Choose a rule")[1:])


# --- SKUs ------------------------------------------------------------------------------------------------

_YES_NO = [("", "Any"), ("yes", "Yes"), ("no", "No")]
PER_PAGE = (50, 200, 500)


class SkuFilterForm(NoColonLabels, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200, help_text="SKU, ASIN or title.")
    rule = forms.ChoiceField(label="Rule", required=False)
    tag = forms.ChoiceField(label="Tag", required=False)
    has_bounds = forms.ChoiceField(label="Has min and max", required=False, choices=_YES_NO)
    paused = forms.ChoiceField(label="Paused", required=False, choices=_YES_NO)
    per_page = forms.TypedChoiceField(
        label="Show",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(n, f"{n} per page") for n in PER_PAGE],
    )

    def __init__(self, *args: Any, rules: Any = (), tags: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(
            self,
            "rule",
            [
                ("", "Any"),
                ("none", "No rule applies"),
                *_rules_choices(rules, "")[1:],
            ],
        )
        _choices(self, "tag", [("", "Any")] + [(tag, tag) for tag in tags])

    def filters(self, rules_by_id: dict[str, RepricingRule]) -> dict[str, Any]:
        """Keyword arguments for `selectors.sku_catalog` (valid form only)."""
        data = self.cleaned_data
        rule: RepricingRule | str | None = None
        if data.get("rule") == "none":
            rule = "none"
        elif data.get("rule"):
            rule = rules_by_id[data["rule"]]
        flags = {"yes": True, "no": False}
        return {
            "q": data.get("q", ""),
            "rule": rule,
            "tag": data.get("tag", ""),
            "has_bounds": flags.get(data.get("has_bounds", "")),
            "paused": flags.get(data.get("paused", "")),
        }


class _PublicIds(forms.MultipleChoiceField):
    """Ticked SKUs: any list of ids (the view looks them up among the member's listings)."""

    def valid_value(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) <= 64


class BulkAssignForm(NoColonLabels, forms.Form):
    """Assign a rule to the selection (ticked SKUs or all matching the filters), or reprice it now."""

    action = forms.ChoiceField(
        choices=[("assign", "Assign rule"), ("reprice", "Reprice now")], initial="assign", required=False
    )
    rule = forms.ChoiceField(label="Rule for the selected SKUs", required=False)
    listings = _PublicIds(required=False, widget=forms.MultipleHiddenInput)
    all_matching = forms.BooleanField(required=False)

    def __init__(self, *args: Any, rules: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(
            self,
            "rule",
            [
                ("", "Choose…"),
                ("none", "No rule of its own (tags or default apply)"),
                *_rules_choices(rules, "")[1:],
            ],
        )

    def clean_listings(self) -> list[str]:
        return list(self.cleaned_data.get("listings") or [])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("listings") and not data.get("all_matching"):
            raise ValidationError("Select at least one SKU.")
        data["action"] = data.get("action") or "assign"
        if data["action"] == "assign" and not data.get("rule"):
            self.add_error("rule", "Choose the rule to assign.")
        return data


class SkuPricingForm(NoColonLabels, forms.Form):
    """A SKU's repricing settings. Money fields are only on the form for roles that see money."""

    MONEY_FIELDS = ("cost", "referral_fee_percent", "fba_fee", "bounds_source", "target_percent")

    enabled = forms.BooleanField(label="Reprice this SKU", required=False)
    rule = forms.ChoiceField(label="Own rule", required=False)
    tags = forms.CharField(
        label="Tags", required=False, help_text="Separated by commas. Tags can bring a rule."
    )
    cost = _money("Unit cost", help_text="Landed at Amazon.")
    referral_fee_percent = _percent("Referral fee (%)", maximum=99)
    fba_fee = _money("FBA fee per unit")
    bounds_source = forms.ChoiceField(
        label="Min price from",
        choices=SkuPricing.BoundsSource.choices,
        help_text="A target margin or ROI computes the min price from cost and fees.",
    )
    target_percent = _percent("Target margin or ROI (%)", maximum=1000)
    min_price = _money("Min price")
    max_price = _money("Max price")

    def __init__(self, *args: Any, rules: Any = (), see_money: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "rule", _rules_choices(rules, "None (tags or default apply)"))
        if not see_money:
            for name in self.MONEY_FIELDS:
                del self.fields[name]

    @classmethod
    def initial_for(cls, pricing: SkuPricing | None) -> dict[str, Any]:
        if pricing is None:
            return {"enabled": True, "bounds_source": SkuPricing.BoundsSource.ENTERED}
        return {
            "enabled": pricing.enabled,
            "rule": str(pricing.rule.public_id) if pricing.rule else "",
            "tags": ", ".join(pricing.tags),
            "cost": pricing.cost,
            "referral_fee_percent": pricing.referral_fee_percent,
            "fba_fee": pricing.fba_fee,
            "bounds_source": pricing.bounds_source,
            "target_percent": pricing.target_percent,
            "min_price": pricing.min_price,
            "max_price": pricing.max_price,
        }

    def values(self, rules_by_id: dict[str, RepricingRule]) -> dict[str, Any]:
        """The service's `values` (only the fields this form shows)."""
        data = dict(self.cleaned_data)
        data["rule"] = rules_by_id.get(data.get("rule") or "")
        data["tags"] = [t.strip() for t in (data.get("tags") or "").split(",") if t.strip()]
        return data


# --- Activity --------------------------------------------------------------------------------------------


class DecisionFilterForm(NoColonLabels, forms.Form):
    sku = forms.CharField(label="SKU or ASIN", required=False, max_length=200)
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any"), *PriceDecision.Action.choices]
    )
    reason = forms.ChoiceField(label="Reason", required=False)
    alert = forms.ChoiceField(label="Alert", required=False)
    trigger = forms.ChoiceField(
        label="Trigger", required=False, choices=[("", "Any"), *PriceDecision.Trigger.choices]
    )
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(
        self, *args: Any, reasons: Any = (), alerts: Any = (), labels: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        reason_label, alert_label = labels or (str, str)
        _choices(self, "reason", [("", "Any")] + [(r, reason_label(r)) for r in reasons])
        _choices(self, "alert", [("", "Any")] + [(a, alert_label(a)) for a in alerts])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data
