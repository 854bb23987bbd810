"""Fixtures for the Amazon gateway tests: ``simulator`` (see amazon/simulator/testing.py)."""

from amazon.simulator.testing import simulator

__all__ = ["simulator"]
