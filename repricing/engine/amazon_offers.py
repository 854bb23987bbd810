"""Amazon's offer listings → engine `Offer`s (pure: dicts in, values out).

Two wire shapes, field names as in Amazon's models (../shared/spapi-models/):

* Product Pricing v0 getListingOffers / getItemOffers (and their batch forms), ``payload.Offers[]``
  (`OfferDetail`): ``SellerId``, ``MyOffer``, ``SubCondition``, ``ListingPrice``/``Shipping``
  ``{Amount, CurrencyCode}``, ``IsFulfilledByAmazon``, ``IsBuyBoxWinner``,
  ``SellerFeedbackRating{SellerPositiveFeedbackRating, FeedbackCount}``, ``ShipsFrom{Country}``,
  ``ShippingTime{maximumHours}`` (lower camel inside ShippingTime), ``offerType`` (B2C/B2B).
  The condition is the response's ``ItemCondition`` (pass it as ``item_condition``); offers carry only
  a sub-condition.
* The ANY_OFFER_CHANGED notification (schemas/notifications/AnyOfferChangedNotification.json): the
  same PascalCase names (the notification is PascalCase throughout, not camelCase), except
  ``ShippingTime{MaximumHours}``; no ``MyOffer`` (our offers are the ones with our seller id) and the
  condition is ``OfferChangeTrigger.ItemCondition``.

Normalisation: condition lower-case (new/used/collectible/refurbished; "club" stays "club");
fulfillment "FBA"/"FBM"; money as Decimal from the JSON number's shortest text (28.59 stays 28.59);
ships-from country upper-case, empty → None. Amazon's own retail offers (AMAZON_RETAIL_SELLER_IDS) get
``is_amazon``. Business-only offers (``offerType`` "B2B") are left out: consumer repricing competes
for the consumer Buy Box. An offer without a listing price is malformed: `OfferFormatError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from repricing.engine.money import round_money
from repricing.engine.types import ZERO, Offer

#: Amazon's retail seller id per marketplace (US, CA, MX, BR, UK, DE, FR, IT, ES, NL, JP, AU).
AMAZON_RETAIL_SELLER_IDS = frozenset(
    {
        "ATVPDKIKX0DER",
        "A3DWYIK6Y9EEQB",
        "AVDBXBAVVSXLQ",
        "A1ZZFT5FULY4LN",
        "A3P5ROKL5A1OLE",
        "A3JWKAKR8XB7XF",
        "A1X6FK5RDHNB96",
        "A11IL2PNWYJU7H",
        "A1AT7YVPFBWXBL",
        "A17D2BRD4YMT0X",
        "AN1VRQENFRJN5",
        "ANEGB3WVEVKZB",
    }
)

_CONDITIONS = {
    "new": "new",
    "used": "used",
    "collectible": "collectible",
    "refurbished": "refurbished",
    "club": "club",
}
# Sub-conditions when the item condition is not given: used grades cannot be told from collectible
# grades, so they read as used.
_SUB_CONDITIONS = {
    "new": "new",
    "refurbished": "refurbished",
    "refurbished warranty": "refurbished",
    "club": "club",
}


class OfferFormatError(ValueError):
    """An offer that does not have the shape Amazon's model promises."""


def _money(value: Any, where: str, *, required: bool) -> tuple[Decimal, str | None]:
    if value is None and not required:
        return ZERO, None
    if not isinstance(value, Mapping):
        raise OfferFormatError(f"{where}: expected {{Amount, CurrencyCode}}, got {value!r}")
    amount = value.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        raise OfferFormatError(f"{where}.Amount: expected a number, got {amount!r}")
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        raise OfferFormatError(f"{where}.Amount: {amount!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise OfferFormatError(f"{where}.Amount: {amount!r} is not a price")
    currency = value.get("CurrencyCode")
    code = currency if isinstance(currency, str) and currency else None
    # Amazon sends JSON numbers (18.5 for 18.50): prices are whole minor units, so show them that way.
    return round_money(number, code or "USD"), code


def _condition(item_condition: str | None, sub_condition: Any) -> str:
    if item_condition:
        key = item_condition.strip().lower()
        return _CONDITIONS.get(key, key)
    sub = sub_condition.strip().lower().replace("_", " ") if isinstance(sub_condition, str) else ""
    return _SUB_CONDITIONS.get(sub, "used" if sub else "new")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _offer(
    raw: Any, index: int, our_seller_id: str, item_condition: str | None, hours_key: str, mine: bool
) -> Offer:
    where = f"Offers[{index}]"
    if not isinstance(raw, Mapping):
        raise OfferFormatError(f"{where}: expected an object")
    price, currency = _money(raw.get("ListingPrice"), f"{where}.ListingPrice", required=True)
    shipping, shipping_currency = _money(raw.get("Shipping"), f"{where}.Shipping", required=False)
    currency = currency or shipping_currency
    if currency is None:
        raise OfferFormatError(f"{where}.ListingPrice.CurrencyCode: missing")
    seller_id = raw.get("SellerId")
    seller_id = seller_id if isinstance(seller_id, str) else ""
    feedback = raw.get("SellerFeedbackRating")
    rating = count = None
    if isinstance(feedback, Mapping):
        value = feedback.get("SellerPositiveFeedbackRating")
        rating = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        count = _int(feedback.get("FeedbackCount"))
    ships_from = raw.get("ShipsFrom")
    country = ships_from.get("Country") if isinstance(ships_from, Mapping) else None
    shipping_time = raw.get("ShippingTime")
    hours = _int(shipping_time.get(hours_key)) if isinstance(shipping_time, Mapping) else None
    return Offer(
        seller_id=seller_id,
        price=price,
        shipping=shipping,
        currency=currency,
        condition=_condition(item_condition, raw.get("SubCondition")),
        fulfillment="FBA" if raw.get("IsFulfilledByAmazon") is True else "FBM",
        is_buy_box_winner=raw.get("IsBuyBoxWinner") is True,
        feedback_rating=rating,
        feedback_count=count,
        ships_from=(country.strip().upper() or None) if isinstance(country, str) else None,
        handling_hours_max=hours,
        is_amazon=seller_id in AMAZON_RETAIL_SELLER_IDS,
        is_ours=(mine and raw.get("MyOffer") is True) or (bool(our_seller_id) and seller_id == our_seller_id),
    )


def offers_from_pricing(
    offers: list[dict[str, Any]], our_seller_id: str, *, item_condition: str | None = None
) -> list[Offer]:
    """Product Pricing v0 ``Offers`` (getListingOffers, getItemOffers, their batches) → `Offer`s.

    ``item_condition`` is the response's ``ItemCondition`` ("New", "Used"...); without it the condition
    is read from each offer's SubCondition (used and collectible grades then both read as used).
    Ours: ``MyOffer`` true or our seller id."""
    if not isinstance(offers, list):
        raise OfferFormatError("Offers: expected a list")
    return [
        _offer(raw, i, our_seller_id, item_condition, "maximumHours", mine=True)
        for i, raw in enumerate(offers)
        if not (isinstance(raw, Mapping) and raw.get("offerType") == "B2B")
    ]


def offers_from_notification(payload: Mapping[str, Any], our_seller_id: str) -> list[Offer]:
    """An ANY_OFFER_CHANGED notification → `Offer`s. ``payload`` may be the whole notification, its
    ``Payload``, or the ``AnyOfferChangedNotification`` object. Ours: our seller id (the payload's
    ``SellerId`` names the receiving seller; pass it when the caller has nothing better)."""
    body: Any = payload
    if isinstance(body, Mapping) and "Payload" in body:
        body = body["Payload"]
    if isinstance(body, Mapping) and "AnyOfferChangedNotification" in body:
        body = body["AnyOfferChangedNotification"]
    if not isinstance(body, Mapping):
        raise OfferFormatError("AnyOfferChangedNotification: expected an object")
    trigger = body.get("OfferChangeTrigger")
    condition = trigger.get("ItemCondition") if isinstance(trigger, Mapping) else None
    offers = body.get("Offers", [])
    if not isinstance(offers, list):
        raise OfferFormatError("Offers: expected a list")
    return [
        _offer(
            raw,
            i,
            our_seller_id,
            condition if isinstance(condition, str) else None,
            "MaximumHours",
            mine=False,
        )
        for i, raw in enumerate(offers)
    ]
