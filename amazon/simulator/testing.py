"""Pytest support: the ``simulator`` fixture (a fresh demo market with seed 7 behind a running server).

Use it from amazon/tests (amazon/tests/conftest.py imports it)::

    def test_something(simulator):
        simulator.base_url            # http://127.0.0.1:<port>
        simulator.lwa_url             # base_url + "/auth/o2/token"
        simulator.credentials         # {"lwa_app_id", "lwa_client_secret", "refresh_token"}
        simulator.seller_id           # the demo seller's selling partner id
        simulator.market.clock.advance(600)
        simulator.market.stats.token_grants
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .app import SimulatorApp
from .market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_SELLER_ID, Market
from .server import SimulatorServer

TEST_SEED = 7
TEST_SKUS = 40  # enough variety, small enough to keep clock advances fast


@dataclass
class RunningSimulator:
    market: Market
    server: SimulatorServer
    base_url: str

    @property
    def app(self) -> SimulatorApp:
        return self.server.app

    @property
    def lwa_url(self) -> str:
        return self.base_url + "/auth/o2/token"

    @property
    def seller_id(self) -> str:
        return DEMO_SELLER_ID

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "lwa_app_id": DEMO_CLIENT_ID,
            "lwa_client_secret": DEMO_CLIENT_SECRET,
            "refresh_token": DEMO_REFRESH_TOKEN,
        }


def start_simulator(market: Market | None = None) -> RunningSimulator:
    market = market or Market.demo(seed=TEST_SEED, skus=TEST_SKUS)
    server = SimulatorServer(market)
    return RunningSimulator(market=market, server=server, base_url=server.start())


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = start_simulator()
    try:
        yield running
    finally:
        running.server.stop()
