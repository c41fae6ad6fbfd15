"""Fixtures shared by the unit tests of the event contract and of the simulation.

A fixed clock, and simulated streams built once per session: generating a day of
events takes seconds, and both the contract's tests (a realistic corpus) and the
simulation's own tests read them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.simulation import FaultConfig, SimulatedMessage, SimulationConfig, backfill

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
"""A fixed end time: tests never read the clock."""

DAY_CONFIG = SimulationConfig(seed=7, rate=3.0)


@pytest.fixture(scope="session")
def end_time() -> dt.datetime:
    """The decoder's ``now`` in tests, and the end of every backfill window."""
    return END


@pytest.fixture(scope="session")
def day_stream() -> list[SimulatedMessage]:
    """A 24-hour backfill without faults (about 260,000 messages)."""
    return list(backfill(DAY_CONFIG, END))


@pytest.fixture(scope="session")
def faulty_stream() -> list[SimulatedMessage]:
    """A 6-hour backfill with every fault switched on at visible rates."""
    faults = FaultConfig(duplicate_rate=0.05, late_rate=0.05, malformed_rate=0.05, max_lateness=dt.timedelta(minutes=5))
    return list(backfill(SimulationConfig(seed=11, rate=3.0), END, window=dt.timedelta(hours=6), faults=faults))
