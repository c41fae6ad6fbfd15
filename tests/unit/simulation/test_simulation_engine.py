"""The engine and its entry points: deterministic, time-ordered, sessionized like a tracker."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
from itertools import islice

import pytest

from pipeline.events import Event
from pipeline.simulation import (
    SESSION_TIMEOUT,
    LiveStream,
    SimulatedMessage,
    SimulationConfig,
    backfill,
    backfill_batches,
    backfill_count,
    from_ms,
    to_ms,
)

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TWO_HOURS = dt.timedelta(hours=2)


# --- determinism -----------------------------------------------------------------------
def test_same_seed_and_end_time_give_identical_bytes() -> None:
    cfg = SimulationConfig(seed=42, rate=5)
    a = list(backfill(cfg, END, window=TWO_HOURS))
    b = list(backfill(cfg, END, window=TWO_HOURS))
    assert len(a) > 10_000
    assert a == b


def test_a_different_seed_gives_a_different_stream() -> None:
    a = list(islice(backfill(SimulationConfig(seed=1, rate=5), END, window=TWO_HOURS), 2000))
    b = list(islice(backfill(SimulationConfig(seed=2, rate=5), END, window=TWO_HOURS), 2000))
    assert {m.key for m in a}.isdisjoint({m.key for m in b})  # other seed, other population
    assert {m.value for m in a}.isdisjoint({m.value for m in b})


def test_batch_size_does_not_change_the_stream() -> None:
    cfg = SimulationConfig(seed=9, rate=5)
    one_by_one = [m for batch in backfill_batches(cfg, END, window=TWO_HOURS, size=1) for m in batch]
    in_batches = list(backfill_batches(cfg, END, window=TWO_HOURS, size=1000))
    assert all(0 < len(batch) <= 1000 for batch in in_batches)
    assert len(in_batches) > 10
    assert [m for batch in in_batches for m in batch] == one_by_one


def test_the_count_of_a_window_is_the_number_of_messages_it_yields() -> None:
    for cfg, window in ((SimulationConfig(seed=3, rate=5), TWO_HOURS), (SimulationConfig(seed=4, rate=0.2), None)):
        span = window or dt.timedelta(hours=24)
        assert backfill_count(cfg, END, window=span) == sum(1 for _ in backfill(cfg, END, window=span)) > 1000


def test_another_window_never_reuses_event_or_session_ids() -> None:
    """Same seed, different end time: different events, so no id may collide downstream."""
    cfg = SimulationConfig(seed=3, rate=5)
    a = [m.event for m in islice(backfill(cfg, END, window=TWO_HOURS), 3000)]
    b = [m.event for m in islice(backfill(cfg, END + dt.timedelta(hours=1), window=TWO_HOURS), 3000)]
    assert {e.event_id for e in a if e}.isdisjoint({e.event_id for e in b if e})
    assert {e.session_id for e in a if e}.isdisjoint({e.session_id for e in b if e})
    assert {e.user_id for e in a if e} & {e.user_id for e in b if e}  # but the users come back


_CHILD = """
import datetime as dt, hashlib
from pipeline.simulation import SimulationConfig, FaultConfig, backfill
end = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
faults = FaultConfig(duplicate_rate=0.02, late_rate=0.02, malformed_rate=0.02)
h = hashlib.sha256()
for m in backfill(SimulationConfig(seed=9, rate=5), end, window=dt.timedelta(hours=1), faults=faults):
    h.update(m.key + b"\\0" + m.value + b"\\0" + m.kind.encode() + b"\\n")
print(h.hexdigest())
"""


def test_stream_is_identical_across_processes_and_hash_seeds() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# --- order, window, ids --------------------------------------------------------------------
def test_events_are_in_time_order_within_the_window(day_events: list[Event]) -> None:
    times = [e.occurred_at for e in day_events]
    assert times == sorted(times)
    assert times[0] > END - dt.timedelta(hours=24)
    assert times[-1] <= END
    assert times[0] < END - dt.timedelta(hours=23, minutes=59)  # steady from the first minute


def test_event_ids_are_unique_and_keys_are_user_ids(
    day_stream: list[SimulatedMessage], day_events: list[Event]
) -> None:
    assert len({e.event_id for e in day_events}) == len(day_events)
    assert all(m.key == e.user_id.encode() for m, e in zip(day_stream, day_events, strict=True))


def test_volume_follows_the_rate(day_events: list[Event]) -> None:
    expected = 3.0 * 86_400
    assert 0.9 * expected < len(day_events) < 1.1 * expected


def test_traffic_has_a_daily_rhythm(day_events: list[Event]) -> None:
    by_hour = collections.Counter(e.occurred_at.hour for e in day_events)
    assert by_hour[20] > 3 * by_hour[3]


# --- sessions --------------------------------------------------------------------------------
def test_sessions_split_exactly_on_thirty_minute_gaps(day_events: list[Event]) -> None:
    last: dict[str, Event] = {}
    outcomes = collections.Counter()
    for e in day_events:
        prev = last.get(e.user_id)
        if prev is not None:
            gap = e.occurred_at - prev.occurred_at
            if gap > SESSION_TIMEOUT:
                assert e.session_id != prev.session_id, (prev, e)
                outcomes["split"] += 1
            else:
                assert e.session_id == prev.session_id, (prev, e)
                outcomes["same"] += 1
        last[e.user_id] = e
    assert outcomes["split"] > 5_000 and outcomes["same"] > 100_000


def test_session_ids_belong_to_one_user_and_never_come_back(day_events: list[Event]) -> None:
    owner: dict[str, str] = {}
    closed: set[str] = set()
    current: dict[str, str] = {}
    for e in day_events:
        assert owner.setdefault(e.session_id, e.user_id) == e.user_id
        if current.get(e.user_id) != e.session_id:
            assert e.session_id not in closed
            if e.user_id in current:
                closed.add(current[e.user_id])
            current[e.user_id] = e.session_id


def test_attribution_is_constant_within_a_session(day_events: list[Event]) -> None:
    seen: dict[str, tuple[str | None, ...]] = {}
    for e in day_events:
        attr = (e.referrer, e.utm_source, e.utm_medium, e.utm_campaign)
        assert seen.setdefault(e.session_id, attr) == attr


def test_users_return_across_sessions_with_a_stable_profile(day_events: list[Event]) -> None:
    profile: dict[str, tuple[str, str, str, str]] = {}
    sessions: dict[str, set[str]] = collections.defaultdict(set)
    for e in day_events:
        p = (e.device_type, e.browser, e.os, e.country)
        assert profile.setdefault(e.user_id, p) == p
        sessions[e.user_id].add(e.session_id)
    returning = sum(1 for s in sessions.values() if len(s) >= 2)
    assert returning / len(sessions) > 0.5


# --- live mode -------------------------------------------------------------------------------
def test_live_stream_content_does_not_depend_on_how_often_it_is_polled() -> None:
    cfg = SimulationConfig(seed=4, rate=50, diurnal=False)
    start = END
    coarse = LiveStream(cfg, start).until(start + dt.timedelta(seconds=60))
    fine_stream = LiveStream(cfg, start)
    fine: list[SimulatedMessage] = []
    for ms in range(0, 60_001, 137):
        fine += fine_stream.until(start + dt.timedelta(milliseconds=ms))
    fine += fine_stream.until(start + dt.timedelta(seconds=60))
    assert fine == coarse
    assert len(coarse) > 1000


def test_live_stream_emits_due_events_at_the_requested_rate() -> None:
    cfg = SimulationConfig(seed=4, rate=200, diurnal=False)
    live = LiveStream(cfg, END)
    now = END
    total = 0
    for _ in range(60):
        previous, now = now, now + dt.timedelta(seconds=1)
        batch = live.until(now)
        for m in batch:
            event = m.event
            assert event is not None and previous < event.occurred_at <= now
        total += len(batch)
    assert total == pytest.approx(200 * 60, rel=0.1)
    due = live.next_due()
    assert due is not None and due > now


def test_high_rates_compress_time_but_keep_the_session_rule() -> None:
    cfg = SimulationConfig(seed=8, rate=20_000, diurnal=False, max_concurrency=2_000)
    live = LiveStream(cfg, END)
    assert live.simulation.time_scale < 0.05
    messages = live.until(END + dt.timedelta(seconds=5))
    assert len(messages) == pytest.approx(100_000, rel=0.1)
    last: dict[str, Event] = {}
    for m in messages:
        e = m.event
        assert e is not None
        prev = last.get(e.user_id)
        if prev is not None and e.occurred_at - prev.occurred_at <= SESSION_TIMEOUT:
            assert e.session_id == prev.session_id
        last[e.user_id] = e


def test_ms_conversions_are_exact() -> None:
    for ms in (0, 1, 1_796_032_867_123, 4_102_444_800_999):
        assert to_ms(from_ms(ms)) == ms
    assert from_ms(1_796_032_867_123).microsecond == 123_000
