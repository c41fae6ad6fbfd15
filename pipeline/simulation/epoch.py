"""Event time as integer milliseconds since the Unix epoch: the simulation's one time unit.

The engine schedules, compares and formats times millions of times per run; integers
are exact and cheap there, so datetimes appear only at the edges (the caller's window
and clock), converted here.
"""

from __future__ import annotations

import datetime as _dt
from typing import Final

EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def to_ms(value: _dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (exact, integer arithmetic)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> _dt.datetime:
    """The aware UTC datetime of milliseconds since the epoch."""
    return EPOCH + _dt.timedelta(milliseconds=ms)
