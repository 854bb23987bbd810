"""Row-level security for every tenant-owned table, applied after each `migrate`.

For each concrete subclass of TenantOwned (and each auto-created many-to-many table of one that
carries the tenant), the owner enables and forces RLS and (re)creates one policy for USING and
WITH CHECK on the transaction-local `app.tenant_id`. A missing or empty setting matches nothing.
Every foreign key from one tenant-owned table to another also gets a composite (tenant_id, column)
foreign key, because PostgreSQL checks foreign keys without row-level security.
Applied from the model registry, so a new tenant-owned model cannot be forgotten; the meta-test in
tests/test_isolation.py reads pg_class/pg_policies and fails for any table without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.models import Model
from psycopg import sql

from tenants.roles import RoleNames

POLICY = "tenant_isolation"
APPEND_ONLY_TABLES = ("tenants_auditevent",)


def tenant_owned_models() -> list[type[Model]]:
    from tenants.models import TenantOwned

    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantOwned) and not model._meta.abstract and not model._meta.proxy
    ]


def tenant_owned_tables() -> list[str]:
    return sorted({model._meta.db_table for model in tenant_owned_models()})


def policy_sql(table: str) -> list[sql.Composed]:
    ident = sql.Identifier(table)
    condition = sql.SQL("tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint")
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident),
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY), ident),
        sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
            sql.Identifier(POLICY), ident, condition, condition
        ),
    ]


APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION app_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$
"""


def append_only_sql(table: str) -> list[sql.Composed]:
    ident = sql.Identifier(table)
    trigger = sql.Identifier(f"{table}_append_only")
    return [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, ident),
        sql.SQL(
            "CREATE TRIGGER {} BEFORE UPDATE OR DELETE ON {} FOR EACH ROW"
            " EXECUTE FUNCTION app_refuse_change()"
        ).format(trigger, ident),
    ]


def configured_roles() -> RoleNames:
    """The role names the product connects as (the users of its three database URLs); the defaults
    when the URLs do not name three different roles (a single-role development setup)."""
    import dj_database_url
    from django.conf import settings

    # From the URLs, not from DATABASES: during `migrate` the default alias is switched to the owner.
    urls = (settings.DATABASE_OWNER_URL, settings.DATABASE_URL, settings.DATABASE_PLATFORM_URL)
    names = tuple(dj_database_url.parse(url).get("USER") for url in urls)
    owner, runtime, platform = (str(name or "") for name in names)
    if owner and runtime and platform and len({owner, runtime, platform}) == 3:
        return RoleNames(owner=owner, runtime=runtime, platform=platform)
    return RoleNames()


@dataclass(frozen=True)
class SameTenantLink:
    """A foreign key from one tenant-owned table to another. PostgreSQL checks foreign keys without
    row-level security, so a plain FK would accept another tenant's row; a composite FK on
    (tenant_id, column) → (tenant_id, id) cannot."""

    table: str
    column: str
    target_table: str

    @property
    def unique_name(self) -> str:
        return f"{self.target_table}_tenant_row"

    @property
    def constraint_name(self) -> str:
        return f"{self.table}_{self.column.removesuffix('_id')}_same_tenant"


def same_tenant_links() -> list[SameTenantLink]:
    owned = set(tenant_owned_models())
    links = []
    for model in owned:
        for field in model._meta.concrete_fields:
            target = getattr(field, "related_model", None)
            if field.many_to_one and target in owned and field.name != "tenant":
                links.append(SameTenantLink(model._meta.db_table, field.column, target._meta.db_table))
    return sorted(links, key=lambda link: (link.table, link.column))


def _columns(raw: Any, table: str) -> set[str]:
    raw.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s",
        [table],
    )
    return {row[0] for row in raw.fetchall()}


def _constraint_exists(raw: Any, name: str) -> bool:
    raw.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [name])
    return raw.fetchone() is not None


def same_tenant_sql(raw: Any, link: SameTenantLink) -> list[sql.Composed]:
    statements = []
    if not _constraint_exists(raw, link.unique_name):
        statements.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE (tenant_id, id)").format(
                sql.Identifier(link.target_table), sql.Identifier(link.unique_name)
            )
        )
    if not _constraint_exists(raw, link.constraint_name):
        # Like Django's own foreign keys: deferred to commit, deletion order handled by the ORM.
        statements.append(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (tenant_id, {}) REFERENCES {} (tenant_id, id)"
                " DEFERRABLE INITIALLY DEFERRED"
            ).format(
                sql.Identifier(link.table),
                sql.Identifier(link.constraint_name),
                sql.Identifier(link.column),
                sql.Identifier(link.target_table),
            )
        )
    return statements


def apply_row_level_security(using: str = "default", **_: Any) -> None:
    """Idempotent: enable + force RLS and the policy on every tenant-owned table; grants; append-only."""
    from tenants.roles import grant_runtime_privileges

    connection = connections[using]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg cursor: composes sql.Composed itself
        existing = set(connection.introspection.table_names(cursor))
        # A partly reversed migration plan can leave a table without its tenant column for a while.
        raw.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'tenant_id'"
        )
        with_tenant = {row[0] for row in raw.fetchall()}
        for table in tenant_owned_tables():
            if table in existing and table in with_tenant:
                for statement in policy_sql(table):
                    raw.execute(statement)
        for link in same_tenant_links():
            ready = {link.table, link.target_table} <= existing & with_tenant
            if ready and link.column in _columns(raw, link.table):
                for statement in same_tenant_sql(raw, link):
                    raw.execute(statement)
        raw.execute(APPEND_ONLY_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            if table in existing:
                for statement in append_only_sql(table):
                    raw.execute(statement)
        grant_runtime_privileges(raw, configured_roles())
