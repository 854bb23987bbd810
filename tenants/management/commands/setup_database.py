"""`manage.py setup_database`: production one-off that creates the three roles and the database.

Run it once per deployment (it is idempotent; docker-compose's `init` service runs it before `migrate`)
with an administrator URL that may create roles and databases:

    DATABASE_ADMIN_URL=postgresql://postgres:...@db:5432/postgres \\
    APP_OWNER_PASSWORD=... APP_RUNTIME_PASSWORD=... APP_PLATFORM_PASSWORD=... \\
    python manage.py setup_database

Role names and the database name are read from the product's own connection settings
(DATABASE_OWNER_URL, DATABASE_URL, DATABASE_PLATFORM_URL), so they cannot disagree with what the product
connects as. Passwords come from APP_OWNER_PASSWORD / APP_RUNTIME_PASSWORD / APP_PLATFORM_PASSWORD;
when one is unset, the password in the matching URL is used; when neither is set the role keeps its
current password (a new role then has none and can only log in where pg_hba allows it).
The admin URL is used for this command only and never stored.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.roles import RoleNames, ensure_roles_and_database


class Command(BaseCommand):
    help = "Create or update the owner, runtime and platform roles and the database (idempotent)."
    requires_system_checks: list[str] = []  # the database may not exist yet

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--admin-url",
            default=os.environ.get("DATABASE_ADMIN_URL"),
            help="Administrator connection URL (default: $DATABASE_ADMIN_URL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        admin_url = options["admin_url"]
        if not admin_url:
            raise CommandError("Pass --admin-url or set DATABASE_ADMIN_URL (a role that may create roles).")
        owner = settings.DATABASE_OWNER
        runtime = settings.DATABASES["default"]
        platform = settings.DATABASES["platform"]
        names = RoleNames(owner=owner["USER"], runtime=runtime["USER"], platform=platform["USER"])
        if len({names.owner, names.runtime, names.platform}) != 3:
            raise CommandError(
                "DATABASE_OWNER_URL, DATABASE_URL and DATABASE_PLATFORM_URL must name three different roles "
                f"(got owner={names.owner}, runtime={names.runtime}, platform={names.platform})."
            )
        database = runtime["NAME"]
        if owner["NAME"] != database or platform["NAME"] != database:
            raise CommandError("The three database URLs must name the same database.")
        passwords = {
            "owner": os.environ.get("APP_OWNER_PASSWORD") or owner.get("PASSWORD") or "",
            "runtime": os.environ.get("APP_RUNTIME_PASSWORD") or runtime.get("PASSWORD") or "",
            "platform": os.environ.get("APP_PLATFORM_PASSWORD") or platform.get("PASSWORD") or "",
        }
        missing = [kind for kind, password in passwords.items() if not password]
        if missing:
            self.stderr.write(f"No password given for: {', '.join(missing)} (kept as they are).")
        try:
            ensure_roles_and_database(
                admin_url, database, names, {kind: pw for kind, pw in passwords.items() if pw}
            )
        except Exception as error:
            raise CommandError(f"Could not set up the database: {type(error).__name__}: {error}") from error
        self.stdout.write(
            f"Database {database!r} ready: owner {names.owner}, runtime {names.runtime}, "
            f"platform {names.platform}. Next: manage.py migrate"
        )
