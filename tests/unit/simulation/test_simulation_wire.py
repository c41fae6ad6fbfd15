"""The engine's timestamp pieces write exactly what a datetime would, for any millisecond."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.simulation.epoch import EPOCH
from pipeline.simulation.wire import MS_PER_MINUTE, minute_prefix, second_stamps

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
