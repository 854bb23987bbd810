"""`manage.py run_product`: the whole product on one machine (what `make run` starts).

1. outside production, starts the Amazon simulator (`python -m amazon.simulator`, 127.0.0.1:$SIMULATOR_PORT,
   default 8100, seed 7, 1 real second = 1 simulated minute; settings point LWA and SP-API at it) and
   waits until it answers (`--no-simulator`, or SIMULATOR_URL set to one running elsewhere, skip this);
2. migrates (as the owner role) and seeds the demo companies (`seed_demo`, idempotent), with the demo
   company connected to the simulator's demo seller;
3. collects static files when the collected copy is missing or older than a source file;
4. starts gunicorn (web, 127.0.0.1:$PORT, default 8000), one Celery worker (every queue) and exactly
   one Celery beat (schedule and pid file under var/);
5. supervises them: if one dies, it stops the others and exits non-zero;
6. on Ctrl-C / SIGTERM / SIGHUP it stops beat first, then web, worker and simulator (gracefully, SIGKILL after
   RUN_PRODUCT_STOP_TIMEOUT seconds, default 30), waits for every process and exits 0. A second signal
   later than a moment after the first kills what is left at once.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only this
supervisor, which stops the children in order; on Linux each child also gets SIGTERM if this process
dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

QUEUES = ",".join(settings.CELERY_TASK_QUEUES_NAMES)
# Signals that arrive within this many seconds of the first are the same request (a terminal Ctrl-C
# reaches us directly and again through config.services, which forwards it).
SAME_REQUEST_SECONDS = 2.0


def _linux_parent_death_signal() -> None:
    """In the child, before exec: own session, and SIGTERM when the supervisor dies (Linux only)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own argv
            self.argv, preexec_fn=_linux_parent_death_signal, close_fds=True
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            # The whole group: worker pool processes and gunicorn workers too when it must be SIGKILL.
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)

    def wait(self, deadline: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def reap_group(self) -> None:
        """After the leader exited: make sure nothing of its process group is left behind."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


class Command(BaseCommand):
    help = "Migrate, seed the demo, then run web + worker + beat and supervise them (make run)."
    requires_system_checks: list[str] = []  # `check` runs as part of migrate

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument(
            "--worker-concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "2"))
        )
        parser.add_argument("--no-seed", action="store_true", help="Do not create the demo companies.")
        parser.add_argument(
            "--no-simulator", action="store_true", help="Do not start the Amazon simulator (demo mode)."
        )
        parser.add_argument(
            "--simulator-speed", type=float, default=60.0, help="simulated seconds per second"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        lock = self._single_instance(var_dir)
        try:
            code = self._run(var_dir, options)
        finally:
            lock.close()
        if code:
            sys.exit(code)

    # --- steps ------------------------------------------------------------------------------------------

    def _single_instance(self, var_dir: Path) -> Any:
        lock = (var_dir / "run_product.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise CommandError(
                f"run_product is already running with this data directory ({var_dir}); stop it first."
            ) from None
        return lock

    def _prepare(self, options: dict[str, Any]) -> None:
        self._say("applying migrations")
        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_seed"]:
            call_command("seed_demo", stdout=self.stdout)
        self._collect_static_if_needed()

    def _collect_static_if_needed(self) -> None:
        from django.contrib.staticfiles.finders import get_finders

        root = Path(settings.STATIC_ROOT)
        stamp = root / ".collected"
        newest = 0.0
        for finder in get_finders():
            for path, storage in finder.list(["CVS", ".*", "*~"]):
                newest = max(newest, os.stat(storage.path(path)).st_mtime)
        if stamp.exists() and stamp.stat().st_mtime >= newest:
            return
        self._say("collecting static files")
        call_command("collectstatic", interactive=False, verbosity=0)
        stamp.touch()

    def _children(self, var_dir: Path, options: dict[str, Any]) -> list[Child]:
        python = sys.executable
        bind = f"{options['host']}:{options['port']}"
        web = [
            python, "-m", "gunicorn", "config.wsgi:application", f"--bind={bind}",
            f"--workers={options['web_workers']}", "--graceful-timeout=20", "--access-logfile=-",
            "--no-control-socket",
        ]  # fmt: skip
        worker = [
            python, "-m", "celery", "--app=config", "worker", f"--queues={QUEUES}",
            f"--concurrency={options['worker_concurrency']}", f"--hostname=worker@{socket.gethostname()}",
            "--loglevel=INFO",
        ]  # fmt: skip
        beat = [
            python, "-m", "celery", "--app=config", "beat", f"--schedule={var_dir / 'celerybeat-schedule'}",
            f"--pidfile={var_dir / 'celerybeat.pid'}", "--loglevel=INFO",
        ]  # fmt: skip
        return [Child("web", web), Child("worker", worker), Child("beat", beat)]

    def _simulator(self, options: dict[str, Any]) -> Child | None:
        """The Amazon simulator for demo mode, or None (production, --no-simulator, or SIMULATOR_URL
        pointing at one that runs elsewhere)."""
        if settings.PRODUCTION or options["no_simulator"] or "SIMULATOR_URL" in os.environ:
            return None
        port = settings.SIMULATOR_PORT
        self._check_port_free("127.0.0.1", port, variable="SIMULATOR_PORT")
        # Competitors' price moves reach our intake as Amazon's ANY_OFFER_CHANGED notifications, signed
        # with AMAZON_NOTIFICATIONS_SECRET (exported by config.services; the simulator reads it too).
        intake = f"http://127.0.0.1:{options['port']}/amazon/notifications"
        argv = [
            sys.executable, "-m", "amazon.simulator", "--host=127.0.0.1", f"--port={port}", "--seed=7",
            f"--speed={options['simulator_speed']}", f"--notify={intake}", "--orders=1000",
        ]  # fmt: skip
        return Child("simulator", argv)

    def _wait_for_simulator(self, simulator: Child) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and simulator.running:
            try:
                with urllib.request.urlopen(f"{settings.SIMULATOR_URL}/_simulator/state", timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        self._say("the Amazon simulator did not start; demo mode has no Amazon data", error=True)

    def _run(self, var_dir: Path, options: dict[str, Any]) -> int:
        self._check_port_free(options["host"], options["port"])
        simulator = self._simulator(options)
        if simulator is not None:
            # First: the demo seed verifies its Amazon connection with a real call to it.
            self._say(f"starting the Amazon simulator on {settings.SIMULATOR_URL}")
            simulator.start()
            self._wait_for_simulator(simulator)
        try:
            self._prepare(options)
        except BaseException:
            if simulator is not None:
                self._stop([simulator], {})
            raise

        stop_requested: dict[str, float] = {}

        def on_signal(signum: int, _frame: object) -> None:
            now = time.monotonic()
            first = stop_requested.setdefault("at", now)
            if now - first > SAME_REQUEST_SECONDS:
                stop_requested["hard"] = now

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)

        children = self._children(var_dir, options)
        if simulator is not None:
            children.append(simulator)
        try:
            for child in children:
                if "at" in stop_requested:
                    break
                if child.process is None:
                    child.start()
            url = f"http://{options['host']}:{options['port']}/"
            self._announce(url, options, children, stop_requested)
            failed = self._supervise(children, stop_requested)
        finally:
            self._stop(children, stop_requested)
        return 1 if failed else 0

    def _supervise(self, children: list[Child], stop_requested: dict[str, float]) -> Child | None:
        while "at" not in stop_requested:
            for child in children:
                if child.process is not None and child.process.poll() is not None:
                    self._say(
                        f"{child.name} exited with code {child.process.returncode}; stopping everything",
                        error=True,
                    )
                    return child
            time.sleep(0.3)
        self._say("stopping (Ctrl-C again after a moment to kill at once)")
        return None

    def _stop(self, children: list[Child], stop_requested: dict[str, float]) -> None:
        timeout = float(os.environ.get("RUN_PRODUCT_STOP_TIMEOUT", "30"))
        # Beat first (no new work is scheduled), then web and worker together. SIGTERM means a graceful
        # stop for all three: gunicorn finishes requests, the worker finishes (or re-queues) its tasks.
        order = sorted(children, key=lambda child: child.name != "beat")
        for child in order:
            child.signal(signal.SIGTERM)
            if child.name == "beat":
                child.wait(time.monotonic() + 5)
        deadline = time.monotonic() + timeout
        for child in order:
            while child.running and time.monotonic() < deadline and "hard" not in stop_requested:
                child.wait(min(deadline, time.monotonic() + 0.3))
            if child.running:
                self._say(f"{child.name} did not stop in time; killing it", error=True)
                child.signal(signal.SIGKILL)
                child.wait(time.monotonic() + 5)
            child.reap_group()
        self._say(f"stopped {', '.join(child.name for child in children)}")

    # --- output -----------------------------------------------------------------------------------------

    def _check_port_free(self, host: str, port: int, variable: str = "PORT") -> None:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise CommandError(
                    f"Port {port} on {host} is taken ({error.strerror}). Set {variable}=<another port>."
                ) from None

    def _announce(
        self, url: str, options: dict[str, Any], children: list[Child], stop_requested: dict[str, float]
    ) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "at" in stop_requested or not all(child.running for child in children):
                return
            try:
                with urllib.request.urlopen(url + "healthz", timeout=1):  # noqa: S310 - our own URL
                    break
            except OSError:
                time.sleep(0.3)
        from accounts.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD

        lines = [
            "",
            "=" * 64,
            f"  SellerPilot is running at {url}",
            f"  Staff admin:  {url}admin/",
            f"  Health:       {url}healthz   {url}readyz",
        ]
        if not options["no_seed"]:
            lines.append(f"  Demo login:   {DEMO_EMAIL}  /  {DEMO_PASSWORD}")
        if any(child.name == "simulator" for child in children):
            lines.append(f"  Amazon:       simulator at {settings.SIMULATOR_URL} (demo mode)")
        lines += ["  Press Ctrl-C to stop everything.", "=" * 64, ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def _say(self, message: str, error: bool = False) -> None:
        stream = self.stderr if error else self.stdout
        stream.write(f"[run_product] {message}")
        stream.flush()
