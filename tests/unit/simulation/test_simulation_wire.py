"""The engine's pre-built pieces write exactly what formatting would: timestamps, event id counters."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.simulation.epoch import EPOCH
from pipeline.simulation.wire import (
    COUNTER_LOW_MASK,
    MS_PER_MINUTE,
    counter_lows,
    event_id_head,
    event_id_prefix,
    minute_prefix,
    second_stamps,
)

# Every millisecond a datetime can hold: 0001-01-01 to 9999-12-31.
FIRST_MS = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - EPOCH) // dt.timedelta(milliseconds=1)
LAST_MS = (dt.datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=dt.UTC) - EPOCH) // dt.timedelta(milliseconds=1)


@given(st.integers(FIRST_MS, LAST_MS))
def test_minute_prefix_and_stamp_spell_the_iso_time_in_milliseconds(at_ms: int) -> None:
    minute = at_ms // MS_PER_MINUTE
    written = minute_prefix(minute) + second_stamps()[at_ms - minute * MS_PER_MINUTE]
    d = EPOCH + dt.timedelta(milliseconds=at_ms)
    expected = (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{d.microsecond // 1000:03d}Z"
    )
    assert written.decode() == expected


def test_every_millisecond_of_a_minute_has_its_own_stamp() -> None:
    stamps = second_stamps()
    assert len(stamps) == MS_PER_MINUTE == len(set(stamps))
    assert (stamps[0], stamps[1], stamps[59_999]) == (b"00.000Z", b"00.001Z", b"59.999Z")


@given(st.integers(0, 2**80 - 1), st.integers(0, 2**48 - 1))
def test_an_event_id_is_its_run_head_and_its_counter_in_twelve_hex_digits(bits: int, counter: int) -> None:
    head = event_id_head(bits)
    written = event_id_prefix(head, counter) + counter_lows()[counter & COUNTER_LOW_MASK]
    assert written == head + f"{counter:012x}".encode()
    event_id = written.removeprefix(b'{"event_id":"').decode()
    assert len(event_id) == 36 and [len(part) for part in event_id.split("-")] == [8, 4, 4, 4, 12]
