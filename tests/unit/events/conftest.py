"""Shared fixtures for the event tests: a fixed clock, an event factory, cached streams.

Generating a day of events takes seconds, so the streams are built once per session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pipeline.events import Event, FaultConfig, Message, SimulationConfig, backfill
from tests.support.events import event_of_type

UTC = dt.UTC
END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
"""A fixed end time: tests never read the clock."""

DAY_CONFIG = SimulationConfig(seed=7, rate=3.0)


SEARCH: dict[str, object] = {
    "event_id": "0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b",
    "user_id": "u-0123456789abcdef",
    "session_id": "s-0123456789abcdef",
    "page_url": "https://shop.example.com/",
    "utm_campaign": "brand_search",
    "search_query": "running shoes",
}
"""Where the event tests' default search differs from the kit's event: fixed ids, so encodings compare."""


def _make_event(**overrides: object) -> Event:
    return event_of_type("search", **{**SEARCH, **overrides})


@pytest.fixture
def end_time() -> dt.datetime:
    """The decoder's ``now`` in tests, and the end of every backfill window."""
    return END


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """A factory of valid events (a search by default); keywords override fields."""
    return _make_event


@pytest.fixture(scope="session")
def day_stream() -> list[Message]:
    """A 24-hour backfill without faults (about 260,000 messages)."""
    return list(backfill(DAY_CONFIG, END))


@pytest.fixture(scope="session")
def faulty_stream() -> list[Message]:
    """A 6-hour backfill with every fault switched on at visible rates."""
    faults = FaultConfig(duplicate_rate=0.05, late_rate=0.05, malformed_rate=0.05, max_lateness=dt.timedelta(minutes=5))
    return list(backfill(SimulationConfig(seed=11, rate=3.0), END, window=dt.timedelta(hours=6), faults=faults))
