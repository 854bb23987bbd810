"""Run the simulator's WSGI app in a background thread (tests) or in the foreground (standalone)."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server

from .app import SimulatorApp
from .market import Market
from .notifications import NotificationDispatcher


class SimulatorServer:
    """``SimulatorServer(market).start()`` returns the base URL (``http://127.0.0.1:<free port>``);
    ``.stop()`` shuts it down. Usable as a context manager."""

    def __init__(self, market: Market, host: str = "127.0.0.1", port: int = 0) -> None:
        self.market = market
        self.app = SimulatorApp(market)
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.notifications = NotificationDispatcher(market)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator server is not running")
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def lwa_url(self) -> str:
        return self.base_url + "/auth/o2/token"

    def start(self) -> str:
        if self._server is None:
            self._server = make_server(self.host, self.port, self.app, threaded=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="amazon-simulator", daemon=True
            )
            self._thread.start()
            self.app.public_url = self.base_url
            self.notifications.start()
        return self.base_url

    def stop(self) -> None:
        self.notifications.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
