"""Tenant isolation enforced by PostgreSQL itself, tested with raw SQL as the runtime role.

The application connects as a role that is not superuser, not the tables' owner and not BYPASSRLS,
so these tests see exactly what the product would see.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, connections, transaction
from psycopg import sql

from tenants.context import TenantContextMissing, tenant_context
from tenants.models import Tenant
from tenants.rls import POLICY, tenant_owned_models, tenant_owned_tables
from tests.factories import make_tenant
from tests.isolation_rows import ROW_MAKERS

# Tables that carry a tenant_id but are read before a tenant is known (login, tenant switcher, API key
# authentication). Every query on them filters by user, key hash or tenant in the application.
# amazon_sellerroute: the notifications intake learns the tenant from a notification's SellerId, so it
# must read the routing table before any tenant context exists; it holds only ids (seller account, region,
# tenant, connection public id), no Amazon data and no secret (amazon/models.py SellerRoute).
PLATFORM_TABLES_WITH_TENANT = {"accounts_membership", "accounts_apikey", "amazon_sellerroute"}


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)).as_string(cursor.cursor)
        )
        return cursor.fetchone()[0]


def _tenant_ids(table: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT DISTINCT tenant_id FROM {}")
            .format(sql.Identifier(table))
            .as_string(cursor.cursor)
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def two_tenants_with_rows(db: None) -> tuple[Tenant, Tenant]:
    a, b = make_tenant("Alpha"), make_tenant("Bravo")
    for tenant, canary in ((a, "CANARY_A"), (b, "CANARY_B")):
        with tenant_context(tenant):
            for maker in ROW_MAKERS.values():
                maker(tenant, canary)
    return a, b


def test_runtime_role_is_not_privileged(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        superuser, bypass, createrole = cursor.fetchone()
        assert (superuser, bypass, createrole) == (False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
        )
        assert cursor.fetchone()[0] == 0, "the runtime role must not own any table"


def test_every_tenant_owned_model_has_a_row_maker() -> None:
    missing = {m._meta.label_lower for m in tenant_owned_models()} - set(ROW_MAKERS)
    assert not missing, f"add these models to tests/isolation_rows.py: {sorted(missing)}"


def test_every_tenant_owned_table_has_forced_rls_and_policy(db: None) -> None:
    tables = tenant_owned_tables()
    assert tables, "no tenant-owned tables found"
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", [table]
            )
            assert cursor.fetchone() == (True, True), f"{table}: RLS not enabled and forced"
            cursor.execute(
                "SELECT qual, with_check FROM pg_policies WHERE tablename = %s AND policyname = %s",
                [table, POLICY],
            )
            row = cursor.fetchone()
            assert row is not None, f"{table}: no {POLICY} policy"
            qual, with_check = row
            assert "app.tenant_id" in qual and "app.tenant_id" in with_check, (
                f"{table}: policy does not key on app.tenant_id"
            )


def test_every_table_with_a_tenant_column_is_tenant_owned_or_listed(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
        with_column = {row[0] for row in cursor.fetchall()}
    unprotected = with_column - set(tenant_owned_tables()) - PLATFORM_TABLES_WITH_TENANT
    assert not unprotected, f"tables with tenant_id but no RLS: {sorted(unprotected)}"


def test_no_tenant_set_sees_zero_rows(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    for table in tenant_owned_tables():
        assert _count(table) == 0, f"{table} shows rows without a tenant"


def test_empty_tenant_setting_sees_zero_rows(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.tenant_id', '', true)")
    for table in tenant_owned_tables():
        assert _count(table) == 0


def test_tenant_a_sees_only_its_rows(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants_with_rows
    for tenant in (a, b):
        with tenant_context(tenant):
            for table in tenant_owned_tables():
                assert _tenant_ids(table) == {tenant.pk}, table
                assert _count(table) == 1, table


def test_writing_another_tenants_row_is_refused(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants_with_rows
    for maker in ROW_MAKERS.values():
        with (
            tenant_context(a),
            pytest.raises(DatabaseError, match="row-level security"),
            transaction.atomic(),
        ):
            maker(b, "INTRUDER")
    with tenant_context(a):
        for table in tenant_owned_tables():
            if table == "tenants_auditevent":
                continue  # append-only: even its own rows cannot be updated (tested below)
            with (
                pytest.raises(DatabaseError, match="row-level security"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(
                    sql.SQL("UPDATE {} SET tenant_id = %s")
                    .format(sql.Identifier(table))
                    .as_string(cursor.cursor),
                    [b.pk],
                )
    with tenant_context(b):
        for table in tenant_owned_tables():
            assert _count(table) == 1, f"{table}: tenant B's rows changed"


def test_updates_and_deletes_of_other_tenant_rows_touch_nothing(
    two_tenants_with_rows: tuple[Tenant, Tenant],
) -> None:
    a, b = two_tenants_with_rows
    with tenant_context(a), connection.cursor() as cursor:
        cursor.execute("DELETE FROM tenants_jobrun WHERE tenant_id = %s", [b.pk])
        assert cursor.rowcount == 0
        cursor.execute("UPDATE accounts_invitation SET role = 'owner' WHERE tenant_id = %s", [b.pk])
        assert cursor.rowcount == 0


def test_audit_log_is_append_only(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    a, _ = two_tenants_with_rows
    with tenant_context(a):
        for statement in (
            "UPDATE tenants_auditevent SET action = 'forged'",
            "DELETE FROM tenants_auditevent",
        ):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)


def test_orm_manager_fails_closed_without_tenant(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    for model in tenant_owned_models():
        with pytest.raises(TenantContextMissing):
            list(model.objects.all())  # type: ignore[attr-defined]


def test_orm_manager_scopes_to_tenant(two_tenants_with_rows: tuple[Tenant, Tenant]) -> None:
    a, _ = two_tenants_with_rows
    with tenant_context(a):
        for model in tenant_owned_models():
            assert {obj.tenant_id for obj in model.objects.all()} == {a.pk}  # type: ignore[attr-defined]


def test_setting_can_only_be_made_inside_a_transaction(db: None) -> None:
    from tenants.context import activate

    tenant = make_tenant()
    assert connection.in_atomic_block  # pytest-django's test transaction; activate() works inside it
    activate(tenant)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        assert cursor.fetchone()[0] == str(tenant.pk)


@pytest.mark.django_db(transaction=True)
def test_setting_is_gone_after_the_transaction_on_the_same_connection() -> None:
    tenant = make_tenant()
    with tenant_context(tenant):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.tenant_id', true), pg_backend_pid()")
            value, pid = cursor.fetchone()
        assert value == str(tenant.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('app.tenant_id', true), ''), pg_backend_pid()")
        after, same_pid = cursor.fetchone()
    assert same_pid == pid, "expected the same pooled connection"
    assert after == ""


@pytest.mark.django_db(transaction=True)
def test_activate_outside_a_transaction_is_refused() -> None:
    from tenants.context import activate

    tenant = make_tenant()
    with pytest.raises(TenantContextMissing):
        activate(tenant)


@pytest.mark.django_db(transaction=True, databases=["default", "platform"])
def test_platform_connection_bypasses_rls_and_is_a_different_role() -> None:
    a, b = make_tenant(), make_tenant()
    for tenant in (a, b):
        with tenant_context(tenant):
            ROW_MAKERS["tenants.jobrun"](tenant, "PLATFORM")
    with connections["platform"].cursor() as cursor:
        cursor.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (True, False)
        cursor.execute("SELECT count(DISTINCT tenant_id) FROM tenants_jobrun")
        assert cursor.fetchone()[0] == 2
    assert _count("tenants_jobrun") == 0  # the runtime connection still sees nothing


def test_models_registry_matches_tables() -> None:
    # Guard the guard: the helper must find the models this suite knows about.
    labels = {m._meta.label_lower for m in tenant_owned_models()}
    assert {"tenants.auditevent", "tenants.jobrun", "accounts.invitation"} <= labels
    assert all(apps.get_model(label) for label in labels)


def test_every_link_between_tenant_owned_tables_is_held_to_one_tenant(db: None) -> None:
    from tenants.rls import same_tenant_links

    links = same_tenant_links()
    assert links, "expected at least one link between tenant-owned tables (e.g. Ads profile → connection)"
    with connection.cursor() as cursor:
        for link in links:
            cursor.execute(
                """
                SELECT array_agg(a.attname ORDER BY k.ord)
                FROM pg_constraint c
                CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND c.confrelid = %s::regclass
                GROUP BY c.oid
                """,
                [link.table, link.target_table],
            )
            keys = [tuple(row[0]) for row in cursor.fetchall()]
            assert ("tenant_id", link.column) in keys, f"{link.table}.{link.column}: no same-tenant key"
