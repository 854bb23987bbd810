"""The repricing decision engine: a pure function of (listing, offers, rule, history) → decision.

No Django, no I/O, stdlib only: callers (services, tasks, backtests) load the inputs, call `decide`,
and act on the `Decision` (submit the price, record the trace, raise the alerts).
"""

from repricing.engine.bounds import computed_max_price, computed_min_price
from repricing.engine.decide import decide
from repricing.engine.rules import Rule, RuleError
from repricing.engine.types import Decision, History, ListingState, Offer, TraceStep

__all__ = [
    "Decision",
    "History",
    "ListingState",
    "Offer",
    "Rule",
    "RuleError",
    "TraceStep",
    "computed_max_price",
    "computed_min_price",
    "decide",
]
