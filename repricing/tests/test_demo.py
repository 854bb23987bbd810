"""Demo mode: the demo company reprices live on the simulator with a default rule and demo bounds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from amazon.models import Listing
from amazon.simulator.testing import simulator
from repricing.demo import DEMO_RULE_NAME
from repricing.models import SkuPricing
from repricing.selectors import repricing_settings
from tenants.context import tenant_context
from tenants.models import Tenant

__all__ = ["simulator"]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    creds = simulator.credentials
    with override_settings(
        LWA_TOKEN_URL=simulator.lwa_url,
        SP_API_ENDPOINT=simulator.base_url,
        SIMULATOR_URL=simulator.base_url,
        LWA_CLIENT_ID=creds["lwa_app_id"],
        LWA_CLIENT_SECRET=creds["lwa_client_secret"],
        SP_API_RETRY_BASE_DELAY_SECONDS=0.01,
    ):
        yield simulator


def test_demo_seed_gives_the_demo_company_a_default_rule_and_bounds_once(sim: Any) -> None:
    from accounts.management.commands.seed_demo import (
        DEMO_TENANTS,
        seed_demo,
        seed_demo_connection,
        seed_demo_repricing_of_connection,
    )

    seed_demo()
    assert "made" in seed_demo_connection()
    said = seed_demo_repricing_of_connection()
    assert DEMO_RULE_NAME in said
    tenant = Tenant.objects.get(slug=DEMO_TENANTS[0][1])
    with tenant_context(tenant):
        settings = repricing_settings()
        assert settings.dry_run is False
        assert settings.default_rule is not None and settings.default_rule.name == DEMO_RULE_NAME
        rows = list(SkuPricing.objects.select_related("listing"))
        listings = Listing.objects.filter(price__isnull=False).count()
        too_cheap = re.search(r"(\d+) too cheap", said)
        assert listings > 10
        assert len(rows) == listings - (int(too_cheap[1]) if too_cheap else 0)
        for row in rows:
            assert row.min_price is not None and row.max_price is not None and row.min_price <= row.max_price
            assert row.max_price == (row.listing.price * Decimal("1.5")).quantize(Decimal("0.01"))
        count = len(rows)
    again = seed_demo_repricing_of_connection()
    assert "0 SKU(s) got demo bounds" in again
    with tenant_context(tenant):
        assert SkuPricing.objects.count() == count
