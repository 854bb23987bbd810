"""Base for management commands that work for one tenant: `--tenant <slug>` enters its context."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.context import tenant_context
from tenants.models import Tenant


class TenantCommand(BaseCommand):
    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="The company's slug.")

    def execute(self, *args: Any, **options: Any) -> str | None:
        slug = options.get("tenant")
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No company with slug {slug!r}.")
        with tenant_context(tenant):
            return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError
