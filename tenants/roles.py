"""The three PostgreSQL roles of the product, created idempotently.

- owner    owns the database and schema, runs migrations. Subject to RLS (FORCE), so even migrations
           cannot read tenant rows without setting a tenant.
- runtime  what the product connects as: LOGIN, NOSUPERUSER, NOBYPASSRLS, not the owner; only DML.
- platform LOGIN, BYPASSRLS, only DML: the audited cross-tenant connection (staff admin, purges).

Plain psycopg, no Django: the embedded launcher runs this before Django is configured, and
`manage.py setup_database` runs it in production against an administrator URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class RoleNames:
    owner: str = "app_owner"
    runtime: str = "app_runtime"
    platform: str = "app_platform"


def _ensure_role(cur: psycopg.Cursor, name: str, attributes: str, password: str | None) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cur.fetchone() else "CREATE"
    statement = sql.SQL(verb + " ROLE {} WITH " + attributes).format(sql.Identifier(name))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    cur.execute(statement)


def ensure_roles_and_database(
    admin_url: str,
    database: str,
    roles: RoleNames = RoleNames(),
    passwords: dict[str, str] | None = None,
) -> None:
    """Create (or bring up to date) the roles and the database. Safe to run any number of times."""
    passwords = passwords or {}
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        # CREATEDB lets the owner build the throw-away test database; the runtime role never can.
        _ensure_role(
            cur, roles.owner, "LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS", passwords.get("owner")
        )
        _ensure_role(
            cur,
            roles.runtime,
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            passwords.get("runtime"),
        )
        _ensure_role(
            cur,
            roles.platform,
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS",
            passwords.get("platform"),
        )
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if not cur.fetchone():
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(
                    sql.Identifier(database), sql.Identifier(roles.owner)
                )
            )
    db_url = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
    with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(roles.owner)))
        grant_runtime_privileges(cur, roles)


def grant_runtime_privileges(cur: psycopg.Cursor, roles: RoleNames = RoleNames()) -> None:
    """DML for runtime and platform on what exists now and on what the owner creates later."""
    for role in (roles.runtime, roles.platform):
        ident = sql.Identifier(role)
        owner = sql.Identifier(roles.owner)
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        cur.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident)
        )
        cur.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
        cur.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
            ).format(owner, ident)
        )
        cur.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}"
            ).format(owner, ident)
        )
