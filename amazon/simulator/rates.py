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
}

MAX_BATCH_REQUESTS = 20
