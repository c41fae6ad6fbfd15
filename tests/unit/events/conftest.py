"""Shared fixtures for the event tests: a fixed clock, an event factory, cached streams.

Generating a day of events takes seconds, so the streams are built once per session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pipeline.events import Event
from pipeline.simulation import FaultConfig, SimulatedMessage, SimulationConfig, backfill

UTC = dt.UTC
END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
"""A fixed end time: tests never read the clock."""

DAY_CONFIG = SimulationConfig(seed=7, rate=3.0)


def _make_event(**overrides: object) -> Event:
    fields: dict[str, object] = dict(
        event_id="0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b",
        schema_version=1,
        event_type="search",
        occurred_at=dt.datetime(2026, 11, 30, 9, 41, 7, 123000, tzinfo=UTC),
        user_id="u-0123456789abcdef",
        session_id="s-0123456789abcdef",
        page_url="https://shop.example.com/",
        referrer="https://www.google.com/",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="brand_search",
        device_type="mobile",
        browser="Chrome",
        os="Android",
        country="DE",
        element_id=None,
        search_query="running shoes",
        product_id=None,
        price=None,
        order_id=None,
        revenue=None,
    )
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


@pytest.fixture
def end_time() -> dt.datetime:
    """The decoder's ``now`` in tests, and the end of every backfill window."""
    return END


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """A factory of valid events (a search by default); keywords override fields."""
    return _make_event


@pytest.fixture(scope="session")
def day_stream() -> list[SimulatedMessage]:
    """A 24-hour backfill without faults (about 260,000 messages)."""
    return list(backfill(DAY_CONFIG, END))


@pytest.fixture(scope="session")
def faulty_stream() -> list[SimulatedMessage]:
    """A 6-hour backfill with every fault switched on at visible rates."""
    faults = FaultConfig(duplicate_rate=0.05, late_rate=0.05, malformed_rate=0.05, max_lateness=dt.timedelta(minutes=5))
    return list(backfill(SimulationConfig(seed=11, rate=3.0), END, window=dt.timedelta(hours=6), faults=faults))
