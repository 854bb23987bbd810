"""What does row-level security cost? The same tenant query, with and without RLS, timed interleaved.

Setup (in a scratch database created through the owner connection, never the product's or the test
database): one table shaped like a tenant-owned table, `tenant_id` first in its index, with exactly
the policy tenants/rls.py puts on every tenant table (ENABLE + FORCE, USING + WITH CHECK on the
transaction-local `app.tenant_id`); N tenants x M rows, generated server-side with generate_series.

Measured, interleaved in one run (random tenant each repetition, random order of the two sides):

  list   newest 50 rows of one tenant
         (a) runtime role, RLS on: set_config('app.tenant_id', X, true); SELECT ... ORDER BY ... LIMIT 50
         (b) BYPASSRLS role: SELECT ... WHERE tenant_id = X ORDER BY ... LIMIT 50
  count  every row of one tenant: SELECT count(*) [WHERE tenant_id = X]

For each: the SELECT's round trip alone, and the whole transaction as the product runs it
(BEGIN, [set_config], SELECT, COMMIT); median, p95 and the ratio a/b; plus server-side execution time
from EXPLAIN ANALYZE and the plans, so a difference can be told apart from client noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

TABLE = "bench_tenant_rows"
SELECT_LIST = "SELECT id, created_at, sku, amount FROM bench_tenant_rows"
ORDER = " ORDER BY created_at DESC, id DESC LIMIT 50"


def _policy_statements() -> list[sql.Composed]:
    try:
        from tenants.rls import policy_sql  # the product's own policy, so the benchmark cannot drift
    except Exception:  # pragma: no cover - only when run outside the project
        condition = sql.SQL("tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint")
        ident = sql.Identifier(TABLE)
        return [
            sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident),
            sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident),
            sql.SQL("CREATE POLICY tenant_isolation ON {} USING ({}) WITH CHECK ({})").format(
                ident, condition, condition
            ),
        ]
    return policy_sql(TABLE)


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds * 1000.0)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _url(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run through `make bench` (python -m config.services -- ...).")
    return value


def _with_db(url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def machine_info(conn: psycopg.Connection) -> list[str]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with conn.cursor() as cur:
        cur.execute("SELECT version(), current_setting('shared_buffers'), current_setting('jit')")
        version, shared_buffers, jit = cur.fetchone()  # type: ignore[misc]
    host = conn.info.host
    transport = "Unix socket" if host.startswith("/") else f"TCP {host}:{conn.info.port}"
    return [
        f"machine      {platform.node()}  {platform.system()} {platform.release()}  {platform.machine()}",
        f"cpu          {cpu}  (nproc {usable}, os.cpu_count {os.cpu_count()})",
        f"postgresql   {version.split(' on ')[0]}  shared_buffers={shared_buffers} jit={jit}",
        f"connection   {transport}",
        f"python       {platform.python_version()}  psycopg {psycopg.__version__}",
    ]


def setup(owner_url: str, scratch: str, runtime: str, bypass: str, tenants: int, rows: int) -> float:
    """(Re)create the scratch database and fill it. Returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    with psycopg.connect(_with_db(owner_url, scratch), autocommit=True) as conn:
        conn.execute(
            f"""CREATE TABLE {TABLE} (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                tenant_id bigint NOT NULL,
                created_at timestamptz NOT NULL,
                sku text NOT NULL,
                amount numeric(12, 2) NOT NULL
            )"""
        )
        # Loaded before RLS is switched on (FORCE would hold even the owner to the policy).
        conn.execute(
            f"""INSERT INTO {TABLE} (tenant_id, created_at, sku, amount)
                SELECT t, timestamptz '2025-01-01' + make_interval(mins => i * 7 + t %% 7),
                       'SKU-' || t || '-' || i, ((i * 37 + t) %% 10000) / 100.0
                FROM generate_series(1, %s) AS t, generate_series(1, %s) AS i""",
            [tenants, rows],
        )
        conn.execute(f"CREATE INDEX bench_tenant_created ON {TABLE} (tenant_id, created_at DESC, id DESC)")
        for statement in _policy_statements():
            conn.execute(statement)
        for role in (runtime, bypass):
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(TABLE), sql.Identifier(role))
            )
        conn.execute(f"VACUUM (ANALYZE) {TABLE}")
    return time.perf_counter() - started


def drop(owner_url: str, scratch: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def check_roles(runtime: psycopg.Connection, bypass: psycopg.Connection) -> None:
    def attributes(conn: psycopg.Connection) -> tuple[str, bool, bool, bool]:
        row = conn.execute(
            "SELECT r.rolname, r.rolsuper, r.rolbypassrls, pg_has_role(r.rolname, t.tableowner, 'USAGE')"
            " FROM pg_roles r, pg_tables t WHERE r.rolname = current_user AND t.tablename = %s",
            [TABLE],
        ).fetchone()
        assert row is not None
        return row

    name, superuser, bypasses, owns = attributes(runtime)
    if superuser or bypasses or owns:
        sys.exit(f"runtime role {name} must be neither superuser, BYPASSRLS nor the table owner")
    name, superuser, bypasses, _ = attributes(bypass)
    if not (bypasses or superuser):
        sys.exit(f"role {name} (DATABASE_PLATFORM_URL) does not bypass RLS")


def _timed_transaction(
    conn: psycopg.Connection, prelude: Callable[[], None] | None, query: str, params: list[Any]
) -> tuple[float, float, list[Any]]:
    """(transaction seconds, SELECT seconds, rows) for BEGIN; [prelude]; SELECT; COMMIT.

    The connections are in autocommit mode so that both sides send exactly the statements listed:
    the RLS side's only extra is its set_config round trip, which is part of what RLS costs."""
    cur = conn.cursor()
    start = time.perf_counter()
    cur.execute("BEGIN")
    if prelude is not None:
        prelude()
    q_start = time.perf_counter()
    cur.execute(query, params)
    result = cur.fetchall()
    q_end = time.perf_counter()
    cur.execute("COMMIT")
    return time.perf_counter() - start, q_end - q_start, result


def run(args: argparse.Namespace) -> None:
    runtime_url = _url("DATABASE_URL")
    owner_url = os.environ.get("DATABASE_OWNER_URL") or _url("DATABASE_ADMIN_URL")
    bypass_url = _url("DATABASE_PLATFORM_URL")
    runtime_role = str(psycopg.conninfo.conninfo_to_dict(runtime_url).get("user") or "app_runtime")
    bypass_role = str(psycopg.conninfo.conninfo_to_dict(bypass_url).get("user") or "app_platform")
    scratch = args.database

    print("RLS cost benchmark")
    with psycopg.connect(owner_url) as conn:
        for line in machine_info(conn):
            print("  " + line)
    print(
        f"  data         {args.tenants} tenants x {args.rows} rows = {args.tenants * args.rows:,} rows "
        f"in scratch database {scratch!r}"
    )
    seconds = setup(owner_url, scratch, runtime_role, bypass_role, args.tenants, args.rows)
    print(f"  setup        {seconds:.1f} s")

    rng = random.Random(args.seed)
    try:
        with (
            psycopg.connect(_with_db(runtime_url, scratch), autocommit=True) as rls,
            psycopg.connect(_with_db(bypass_url, scratch), autocommit=True) as bypass,
        ):
            check_roles(rls, bypass)

            def set_tenant(tenant: int) -> Callable[[], None]:
                def prelude() -> None:
                    rls.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant)])

                return prelude

            variants = {
                "list newest 50": (SELECT_LIST + ORDER, SELECT_LIST + " WHERE tenant_id = %s" + ORDER),
                "count tenant rows": (
                    f"SELECT count(*) FROM {TABLE}",
                    f"SELECT count(*) FROM {TABLE} WHERE tenant_id = %s",
                ),
            }
            # Warm-up: caches, prepared statements (psycopg prepares after 5 executions).
            for rls_query, bypass_query in variants.values():
                for _ in range(50):
                    tenant = rng.randint(1, args.tenants)
                    _timed_transaction(rls, set_tenant(tenant), rls_query, [])
                    _timed_transaction(bypass, None, bypass_query, [tenant])

            print(
                f"\n  {args.reps} repetitions per side, interleaved, random tenant and order; times in ms\n"
            )
            header = (
                f"  {'query':<18} {'measure':<12} {'RLS median':>10} {'p95':>8} "
                f"{'bypass median':>13} {'p95':>8} {'ratio':>7}"
            )
            print(header)
            print("  " + "-" * (len(header) - 2))
            for label, (rls_query, bypass_query) in variants.items():
                series = {key: Series() for key in ("rls_tx", "rls_q", "by_tx", "by_q")}
                for _ in range(args.reps):
                    tenant = rng.randint(1, args.tenants)
                    sides = [("rls", tenant), ("by", tenant)]
                    rng.shuffle(sides)
                    results = {}
                    for side, t in sides:
                        if side == "rls":
                            tx, q, rows = _timed_transaction(rls, set_tenant(t), rls_query, [])
                        else:
                            tx, q, rows = _timed_transaction(bypass, None, bypass_query, [t])
                        series[f"{side}_tx"].add(tx)
                        series[f"{side}_q"].add(q)
                        results[side] = rows
                    if results["rls"] != results["by"]:
                        sys.exit(f"{label}: RLS and explicit filter disagree for tenant {tenant}")
                for measure, a, b in (("SELECT only", "rls_q", "by_q"), ("transaction", "rls_tx", "by_tx")):
                    sa, sb = series[a], series[b]
                    print(
                        f"  {label:<18} {measure:<12} {sa.median:>10.3f} {sa.p95:>8.3f} "
                        f"{sb.median:>13.3f} {sb.p95:>8.3f} {sa.median / sb.median:>6.2f}x"
                    )

            print(f"\n  server-side execution (EXPLAIN ANALYZE, median of {args.explain_reps}, ms) and plan")
            for label, (rls_query, bypass_query) in variants.items():
                server: dict[str, Series] = {"rls": Series(), "by": Series()}
                plans: dict[str, str] = {}
                for _ in range(args.explain_reps):
                    tenant = rng.randint(1, args.tenants)
                    rls.execute("BEGIN")
                    set_tenant(tenant)()
                    plan = rls.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + rls_query).fetchone()[0][0]  # type: ignore[index]
                    rls.execute("COMMIT")
                    server["rls"].add(plan["Execution Time"] / 1000.0)
                    plans["rls"] = _plan_summary(plan["Plan"])
                    plan = bypass.execute(
                        "EXPLAIN (ANALYZE, FORMAT JSON) " + bypass_query, [tenant]
                    ).fetchone()[0][0]  # type: ignore[index]
                    server["by"].add(plan["Execution Time"] / 1000.0)
                    plans["by"] = _plan_summary(plan["Plan"])
                ratio = server["rls"].median / server["by"].median
                print(
                    f"  {label:<18} RLS {server['rls'].median:.3f}  bypass {server['by'].median:.3f}  "
                    f"ratio {ratio:.2f}x"
                )
                print(f"  {'':<18} RLS plan:    {plans['rls']}")
                print(f"  {'':<18} bypass plan: {plans['by']}")
    finally:
        if not args.keep:
            drop(owner_url, scratch)


def _plan_summary(node: dict[str, Any]) -> str:
    parts = []
    while node:
        text = node["Node Type"]
        if node.get("Index Name"):
            text += f" using {node['Index Name']}"
        if node.get("Index Cond"):
            text += f" [{node['Index Cond']}]"
        if node.get("Filter"):
            text += f" filter {node['Filter']}"
        parts.append(text)
        children = node.get("Plans") or []
        node = children[0] if children else {}
    return " -> ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1000, help="rows per tenant")
    parser.add_argument("--reps", type=int, default=5000, help="timed repetitions per side and query")
    parser.add_argument("--explain-reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--database", default="sellerpilot_bench_rls", help="scratch database (dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
