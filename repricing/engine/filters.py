"""Which offers the engine prices against.

Our own offers (``is_ours``) are never competitors. Offers in another currency than the listing's, or
in a condition we do not compete with (our listing's condition unless ``filters.conditions`` names
others), are ignored with a trace line. The rule's filters then exclude competitors by fulfillment
channel, feedback (offers without a rating or count fail a minimum: a brand-new or hidden seller is
not a trustworthy benchmark), ships-from country and handling time (an unknown origin or handling time
passes: Amazon often leaves them out for FBA offers), Amazon's own retail offer, and named sellers
(excluded, or the only ones targeted). Each exclusion is counted per reason for the trace.

The Buy Box winner is looked for among all comparable offers (right currency and condition) before
the filters: whether somebody holds the Buy Box is a fact of the market, whether we compete with
them is the filters' call.
"""

from __future__ import annotations

from collections.abc import Sequence

from repricing.engine.rules import Filters
from repricing.engine.types import ListingState, Offer


class Selection:
    """The offers sorted into what the strategies need (a plain slotted class: one is built per
    decision, and a dataclass's default factories cost more than the fields)."""

    __slots__ = (
        "buy_box",
        "competitors",
        "excluded",
        "excluded_total",
        "other_condition",
        "other_currency",
        "ours",
    )

    def __init__(self) -> None:
        self.competitors: list[Offer] = []
        self.ours: list[Offer] = []
        #: Comparable offers (currency and condition) that hold the Buy Box, ours included.
        self.buy_box: list[Offer] = []
        #: currency / condition → number of competitor offers ignored for it.
        self.other_currency: dict[str, int] = {}
        self.other_condition: dict[str, int] = {}
        #: reason → number of competitor offers the filters excluded.
        self.excluded: dict[str, int] = {}
        self.excluded_total = 0


_REASONS: dict[int, tuple[Filters, tuple[str, ...]]] = {}


def _reasons(f: Filters) -> tuple[str, ...]:
    """The trace phrase of each filter test, built once per rule's filters (keyed by identity: rules
    are immutable and long-lived, and hashing one per offer list would cost more than the lookup)."""
    cached = _REASONS.get(id(f))
    if cached is not None and cached[0] is f:
        return cached[1]
    if len(_REASONS) >= 4096:
        _REASONS.clear()
    reasons = (
        "excluded by name",
        "not among your targeted sellers",
        "Amazon",
        f"not {f.fulfillment}",
        f"below {f.min_feedback_rating or 0:g}% positive feedback",
        f"fewer than {f.min_feedback_count} ratings",
        f"ships from outside {', '.join(sorted(f.ships_from))}",
        f"handling time over {f.max_handling_hours} h",
    )
    _REASONS[id(f)] = (f, reasons)
    return reasons


def exclusion(offer: Offer, filters: Filters) -> str | None:
    """Why the filters exclude ``offer`` (a short phrase for the trace), or None if it counts.
    The same tests in the same order as the loop in `select`."""
    f = filters
    checks = (
        bool(f.exclude_sellers) and offer.seller_id in f.exclude_sellers,
        bool(f.only_sellers) and offer.seller_id not in f.only_sellers,
        f.exclude_amazon and offer.is_amazon,
        f.fulfillment != "any" and offer.fulfillment != f.fulfillment,
        f.min_feedback_rating is not None
        and (offer.feedback_rating is None or offer.feedback_rating < f.min_feedback_rating),
        f.min_feedback_count is not None
        and (offer.feedback_count is None or offer.feedback_count < f.min_feedback_count),
        bool(f.ships_from) and offer.ships_from is not None and offer.ships_from.upper() not in f.ships_from,
        f.max_handling_hours is not None
        and offer.handling_hours_max is not None
        and offer.handling_hours_max > f.max_handling_hours,
    )
    for excluded, reason in zip(checks, _reasons(f), strict=True):
        if excluded:
            return reason
    return None


def select(listing: ListingState, offers: Sequence[Offer], filters: Filters) -> Selection:
    """Sort ``offers`` into ours, comparable Buy Box holders, competitors and the ignored (counted).

    This is the engine's hot loop (every offer of every listing), so the filters are tested inline
    here rather than through `exclusion` (the same tests in the same order, used to explain a single
    offer); the tests hold the two to agreeing."""
    selection = Selection()
    competitors, ours, buy_box, excluded = (
        selection.competitors,
        selection.ours,
        selection.buy_box,
        selection.excluded,
    )
    currency = listing.currency
    conditions = filters.conditions or (listing.condition.lower(),)
    f = filters
    exclude, only, no_amazon = f.exclude_sellers, f.only_sellers, f.exclude_amazon
    channel = None if f.fulfillment == "any" else f.fulfillment
    min_rating, min_count = f.min_feedback_rating, f.min_feedback_count
    ships, max_hours = f.ships_from, f.max_handling_hours
    active = bool(
        exclude or only or no_amazon or channel or ships
        or min_rating is not None or min_count is not None or max_hours is not None
    )  # fmt: skip
    if active:
        reasons = _reasons(f)
    for offer in offers:
        if offer.currency != currency:
            if not offer.is_ours:
                selection.other_currency[offer.currency] = selection.other_currency.get(offer.currency, 0) + 1
            continue
        if offer.condition not in conditions:
            if not offer.is_ours:
                selection.other_condition[offer.condition] = (
                    selection.other_condition.get(offer.condition, 0) + 1
                )
            continue
        if offer.is_buy_box_winner:
            buy_box.append(offer)
        if offer.is_ours:
            ours.append(offer)
            continue
        if active:
            reason = None
            if exclude and offer.seller_id in exclude:
                reason = reasons[0]
            elif only and offer.seller_id not in only:
                reason = reasons[1]
            elif no_amazon and offer.is_amazon:
                reason = reasons[2]
            elif channel is not None and offer.fulfillment != channel:
                reason = reasons[3]
            elif min_rating is not None and (
                offer.feedback_rating is None or offer.feedback_rating < min_rating
            ):
                reason = reasons[4]
            elif min_count is not None and (offer.feedback_count is None or offer.feedback_count < min_count):
                reason = reasons[5]
            elif ships and offer.ships_from is not None and offer.ships_from.upper() not in ships:
                reason = reasons[6]
            elif (
                max_hours is not None
                and offer.handling_hours_max is not None
                and offer.handling_hours_max > max_hours
            ):
                reason = reasons[7]
            if reason is not None:
                excluded[reason] = excluded.get(reason, 0) + 1
                selection.excluded_total += 1
                continue
        competitors.append(offer)
    return selection
