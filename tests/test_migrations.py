"""Migrations: every migration of our core apps can be reversed to zero and applied again (as the owner
role, like `manage.py migrate`), row-level security comes back with the tables, and the models have no
change without a migration."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tenants.db import as_owner
from tenants.rls import tenant_owned_tables

APPS = ["tenants", "accounts", "amazon"]


def _applied(app: str) -> list[str]:
    executor = MigrationExecutor(connection)
    return sorted(name for (label, name) in executor.loader.applied_migrations if label == app)


def _tables_without_forced_rls() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)"
            " AND NOT (relrowsecurity AND relforcerowsecurity)",
            [tenant_owned_tables()],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("app", APPS)
def test_migrations_reverse_to_zero_and_apply_again(app: str) -> None:
    before = _applied(app)
    assert before, f"no migrations applied for {app}"
    out = StringIO()
    with as_owner("default"):
        call_command("migrate", app, "zero", interactive=False, verbosity=0, stdout=out)
        assert _applied(app) == []
        call_command("migrate", interactive=False, verbosity=0, stdout=out)
    assert _applied(app) == before
    assert _tables_without_forced_rls() == []


@pytest.mark.django_db
def test_models_have_no_change_without_a_migration() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:
        pytest.fail(f"makemigrations --check found changes (exit {exit_.code}):\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()
