"""`manage.py seed_demo`: the demo companies and their owner, for `make run`. Safe to run again.

Creates (or brings back) the owner `demo@sellerpilot.local` with the fixed password printed below, the
company "Demo Seller Co" (slug `demo`) and a second company "Demo Outlet Ltd" (slug `demo-outlet`) so
the company switcher has something to switch to. Refuses to run in production unless told to.

Demo mode: "Demo Seller Co" is connected to the Amazon simulator's demo seller (own-app credentials of the
simulator's demo app), through the same service a seller uses, so the connection is verified with a real
call. When the simulator is not reachable it says so and carries on (the rest of the demo still works).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Membership, User
from accounts.roles import Role
from accounts.services import tenant_create
from tenants.models import Tenant

DEMO_EMAIL = "demo@sellerpilot.local"
DEMO_PASSWORD = "demo-seller-pilot-7"  # a published demo login, development only
DEMO_TENANTS = (
    ("Demo Seller Co", "demo"),
    ("Demo Outlet Ltd", "demo-outlet"),
)


class Command(BaseCommand):
    help = "Create the demo companies and their owner (idempotent; development and demo mode only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production", action="store_true", help="Seed even when DJANGO_ENV=production."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION and not options["allow_production"]:
            raise CommandError("Refusing to create a demo login with a published password in production.")
        created = seed_demo()
        verb = "created" if created else "already there"
        self.stdout.write(f"Demo data {verb}: {', '.join(slug for _, slug in DEMO_TENANTS)}")
        self.stdout.write(seed_demo_connection())
        self.stdout.write(seed_demo_ads_connection())
        self.stdout.write(seed_demo_repricing_of_connection())
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")


@transaction.atomic
def seed_demo() -> bool:
    """Ensure the demo owner and companies exist. Returns True when anything was created."""
    created = False
    user = User.objects.filter(email=DEMO_EMAIL).first()
    if user is None:
        user = User.objects.create_user(email=DEMO_EMAIL, password=DEMO_PASSWORD, full_name="Demo Seller")
        created = True
    elif not user.check_password(DEMO_PASSWORD) or not user.is_active:
        # The printed login must work: put the published password back (demo data only).
        user.set_password(DEMO_PASSWORD)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
    for name, slug in DEMO_TENANTS:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            tenant_create(name=name, slug=slug, owner=user)
            created = True
        elif not Membership.objects.filter(tenant=tenant, user=user).exists():
            Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
            created = True
    return created


def seed_demo_connection() -> str:
    """Connect the demo company to the simulator's demo seller unless an active connection exists.
    Returns what happened, for the console."""
    import httpx

    from amazon.models import Region, SellerConnection
    from amazon.services import AmazonConnectionError, seller_connection_create_own_app
    from amazon.simulator.market import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        DEMO_REFRESH_TOKEN,
        DEMO_SELLER_ID,
    )
    from tenants.context import tenant_context

    simulator = settings.SIMULATOR_URL
    if not simulator:
        return "Demo Amazon connection skipped: no simulator configured (SIMULATOR_URL)."
    tenant = Tenant.objects.get(slug=DEMO_TENANTS[0][1])
    user = User.objects.get(email=DEMO_EMAIL)
    with tenant_context(tenant):
        live = SellerConnection.objects.filter(
            region=Region.NA, selling_partner_id=DEMO_SELLER_ID, status=SellerConnection.Status.ACTIVE
        ).exists()
    if live:
        return "Demo Amazon connection already there."
    try:
        httpx.get(f"{simulator}/_simulator/state", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return (
            f"Demo Amazon connection skipped: the simulator at {simulator} is not reachable. Start it "
            "with `python -m amazon.simulator` (make run does) and run `manage.py seed_demo` again."
        )
    try:
        with tenant_context(tenant):
            connection = seller_connection_create_own_app(
                tenant=tenant,
                actor=user,
                actor_role=Role.OWNER,
                region=Region.NA,
                selling_partner_id=DEMO_SELLER_ID,
                lwa_client_id=DEMO_CLIENT_ID,
                lwa_client_secret=DEMO_CLIENT_SECRET,
                refresh_token=DEMO_REFRESH_TOKEN,
                name="Demo Outfitters (simulator)",
            )
    except AmazonConnectionError as error:
        return f"Demo Amazon connection not made: {error.message}"
    markets = ", ".join(m["country_code"] for m in connection.marketplaces)
    return f"Demo Amazon connection made to the simulator's seller {DEMO_SELLER_ID} ({markets})."


def seed_demo_ads_connection() -> str:
    """Authorise the Ads API on the demo connection with the simulator's demo Ads refresh token (verified
    by listing its advertising profiles), unless it is authorised already. Returns what happened."""
    import httpx

    from amazon.models import Region, SellerConnection
    from amazon.services import AmazonConnectionError, ads_connect
    from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN
    from amazon.simulator.market import DEMO_SELLER_ID
    from tenants.context import tenant_context

    simulator = settings.SIMULATOR_URL
    if not simulator:
        return "Demo Amazon Ads skipped: no simulator configured (SIMULATOR_URL)."
    tenant = Tenant.objects.get(slug=DEMO_TENANTS[0][1])
    user = User.objects.get(email=DEMO_EMAIL)
    with tenant_context(tenant):
        connection = SellerConnection.objects.filter(
            region=Region.NA, selling_partner_id=DEMO_SELLER_ID, status=SellerConnection.Status.ACTIVE
        ).first()
        if connection is None:
            return "Demo Amazon Ads skipped: the demo Amazon connection is not there."
        if (
            connection.ads_refresh_token_encrypted
            and connection.ads_profiles.filter(is_enabled=True).exists()
        ):
            return "Demo Amazon Ads already there."
    try:
        httpx.get(f"{simulator}/_simulator/state", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return (
            f"Demo Amazon Ads skipped: the simulator at {simulator} is not reachable. Start it with "
            "`python -m amazon.simulator` (make run does) and run `manage.py seed_demo` again."
        )
    try:
        with tenant_context(tenant):
            ads_connect(
                tenant=tenant,
                actor=user,
                actor_role=Role.OWNER,
                connection=connection,
                ads_refresh_token=DEMO_ADS_REFRESH_TOKEN,
            )
            count = connection.ads_profiles.filter(is_enabled=True).count()
    except AmazonConnectionError as error:
        return f"Demo Amazon Ads not connected: {error.message}"
    return f"Demo Amazon Ads connected: {count} advertising profiles."


def seed_demo_repricing_of_connection() -> str:
    """The demo company's repricing rule and SKU bounds (repricing/demo.py), once it is connected."""
    from amazon.models import Region, SellerConnection
    from amazon.simulator.market import DEMO_SELLER_ID
    from repricing.demo import seed_demo_repricing
    from tenants.context import tenant_context

    tenant = Tenant.objects.get(slug=DEMO_TENANTS[0][1])
    user = User.objects.get(email=DEMO_EMAIL)
    with tenant_context(tenant):
        connection = SellerConnection.objects.filter(
            region=Region.NA, selling_partner_id=DEMO_SELLER_ID, status=SellerConnection.Status.ACTIVE
        ).first()
        if connection is None:
            return "Demo repricing skipped: the demo Amazon connection is not there."
        return seed_demo_repricing(connection=connection, user=user)
