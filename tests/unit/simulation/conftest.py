"""Fixtures of the simulation tests: the day stream decoded once (the streams are one level up)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.events import Event, EventDecoder
from pipeline.simulation import SimulatedMessage


@pytest.fixture(scope="session")
def day_events(day_stream: list[SimulatedMessage], end_time: dt.datetime) -> list[Event]:
    """Every event of ``day_stream``, decoded (and so validated) by the consumer's decoder."""
    decoder = EventDecoder()
    return [decoder.decode(m.value, end_time) for m in day_stream]
