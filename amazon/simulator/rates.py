"""Amazon's published default usage plans (requests per second, burst) for the operations the simulator
answers, from the models' usage-plan tables (see ../shared/spapi-models/README.md)."""

from __future__ import annotations

from decimal import Decimal

# operation id -> (rate per second, burst)
USAGE_PLANS: dict[str, tuple[Decimal, int]] = {
    "getMarketplaceParticipations": (Decimal("0.016"), 15),
    "getListingsItem": (Decimal("5"), 10),
    "patchListingsItem": (Decimal("5"), 5),
    "searchListingsItems": (Decimal("5"), 5),
    "getItemOffers": (Decimal("0.5"), 1),
    "getListingOffers": (Decimal("1"), 2),
    "getItemOffersBatch": (Decimal("0.1"), 1),
    "getListingOffersBatch": (Decimal("0.5"), 1),
    "getOrders": (Decimal("0.0167"), 20),
    "getOrder": (Decimal("0.5"), 30),
    "getOrderItems": (Decimal("0.5"), 30),
    "listFinancialEvents": (Decimal("0.5"), 30),
    "listFinancialEventsByOrderId": (Decimal("0.5"), 30),
    "getInventorySummaries": (Decimal("2"), 2),
    "createReport": (Decimal("0.0167"), 15),
    "getReport": (Decimal("2"), 15),
    "getReportDocument": (Decimal("0.0167"), 15),
    "createFeedDocument": (Decimal("0.5"), 15),
    "getFeedDocument": (Decimal("0.0222"), 10),
    "createFeed": (Decimal("0.0083"), 15),
    "getFeed": (Decimal("2"), 15),
    # Notifications v1 (notifications_api.py): every operation 1/5
    "createDestination": (Decimal("1"), 5),
    "getDestinations": (Decimal("1"), 5),
    "getDestination": (Decimal("1"), 5),
    "deleteDestination": (Decimal("1"), 5),
    "createSubscription": (Decimal("1"), 5),
    "getSubscription": (Decimal("1"), 5),
    "getSubscriptionById": (Decimal("1"), 5),
    "deleteSubscriptionById": (Decimal("1"), 5),
}

MAX_BATCH_REQUESTS = 20
