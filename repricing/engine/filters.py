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
from dataclasses import dataclass, field

from repricing.engine.rules import Filters
from repricing.engine.types import ListingState, Offer


@dataclass(slots=True)
class Selection:
    """The offers sorted into what the strategies need."""

    competitors: list[Offer] = field(default_factory=list)
    ours: list[Offer] = field(default_factory=list)
    #: Comparable offers (currency and condition) that hold the Buy Box, ours included.
    buy_box: list[Offer] = field(default_factory=list)
    other_currency: dict[str, int] = field(default_factory=dict)
    other_condition: dict[str, int] = field(default_factory=dict)
    #: reason → number of competitor offers the filters excluded.
    excluded: dict[str, int] = field(default_factory=dict)


def exclusion(offer: Offer, filters: Filters) -> str | None:
    """Why the filters exclude ``offer`` (a short phrase for the trace), or None if it counts."""
    f = filters
    if f.exclude_sellers and offer.seller_id in f.exclude_sellers:
        return "excluded by name"
    if f.only_sellers and offer.seller_id not in f.only_sellers:
        return "not among your targeted sellers"
    if f.exclude_amazon and offer.is_amazon:
        return "Amazon"
    if f.fulfillment != "any" and offer.fulfillment != f.fulfillment:
        return f"not {f.fulfillment}"
    if f.min_feedback_rating is not None and (
        offer.feedback_rating is None or offer.feedback_rating < f.min_feedback_rating
    ):
        return f"below {f.min_feedback_rating:g}% positive feedback"
    if f.min_feedback_count is not None and (
        offer.feedback_count is None or offer.feedback_count < f.min_feedback_count
    ):
        return f"fewer than {f.min_feedback_count} ratings"
    if f.ships_from and offer.ships_from is not None and offer.ships_from.upper() not in f.ships_from:
        return f"ships from outside {', '.join(sorted(f.ships_from))}"
    if (
        f.max_handling_hours is not None
        and offer.handling_hours_max is not None
        and offer.handling_hours_max > f.max_handling_hours
    ):
        return f"handling time over {f.max_handling_hours} h"
    return None


def select(listing: ListingState, offers: Sequence[Offer], filters: Filters) -> Selection:
    """Sort ``offers`` into ours, comparable Buy Box holders, competitors and the ignored (counted)."""
    selection = Selection()
    competitors, ours, buy_box = selection.competitors, selection.ours, selection.buy_box
    currency = listing.currency
    conditions = filters.conditions or (listing.condition.lower(),)
    # The common case (no filter set) skips the per-offer exclusion call entirely.
    unfiltered = filters == _NO_FILTERS
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
        if not unfiltered:
            reason = exclusion(offer, filters)
            if reason is not None:
                selection.excluded[reason] = selection.excluded.get(reason, 0) + 1
                continue
        competitors.append(offer)
    return selection


_NO_FILTERS = Filters()
