"""`migrate` runs as the schema owner; the product itself never holds the owner's credentials in use."""

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate

from tenants.db import as_owner


class Command(DjangoMigrate):
    help = "Apply migrations as the owner role, then (re)apply row-level security and grants."

    def handle(self, *args: Any, **options: Any) -> None:
        with as_owner(options.get("database") or "default"):
            super().handle(*args, **options)
