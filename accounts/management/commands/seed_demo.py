"""`manage.py seed_demo`: the demo companies and their owner, for `make run`. Safe to run again.

Creates (or brings back) the owner `demo@sellerpilot.local` with the fixed password printed below, the
company "Demo Seller Co" (slug `demo`) and a second company "Demo Outlet Ltd" (slug `demo-outlet`) so
the company switcher has something to switch to. Refuses to run in production unless told to.
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
