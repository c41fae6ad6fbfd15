"""Backfill sends exactly --events messages, inside the window, identically for one seed."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from pipeline.jobs.produce import ProduceOptions, backfill_messages

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("events", "hours"), [(5_000, 24), (3_000, 2), (30_000, 6)])
def test_exact_count_inside_the_window(events: int, hours: int) -> None:
    options = ProduceOptions(topic="t", seed=7, events=events, end_time=END, window=dt.timedelta(hours=hours))
    messages = list(backfill_messages(options))
    assert len(messages) == events
    times = [
        dt.datetime.strptime(msgspec.json.decode(m.value)["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.UTC
        )
        for m in messages
    ]
    assert END - dt.timedelta(hours=hours) < min(times) and max(times) <= END
    assert len({msgspec.json.decode(m.value)["event_id"] for m in messages}) == events


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def stream(seed: int) -> list[bytes]:
        options = ProduceOptions(topic="t", seed=seed, events=2_000, end_time=END, window=dt.timedelta(hours=3))
        return [m.key + b"|" + m.value for m in backfill_messages(options)]

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)
