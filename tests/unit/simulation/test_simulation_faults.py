"""Fault injection: duplicates, late and malformed messages, at the configured rates."""

from __future__ import annotations

import collections
import datetime as dt
from itertools import islice

import pytest

from pipeline.events import EventDecoder, InvalidEvent
from pipeline.simulation import (
    MALFORMED_KINDS,
    NO_FAULTS,
    FaultConfig,
    LiveStream,
    SimulatedMessage,
    SimulationConfig,
    backfill,
)

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
FAULTY_CONFIG = SimulationConfig(seed=11, rate=3.0)
SIX_HOURS = dt.timedelta(hours=6)


@pytest.fixture(scope="module")
def clean_stream() -> list[SimulatedMessage]:
    """The same run as ``faulty_stream`` without faults."""
    return list(backfill(FAULTY_CONFIG, END, window=SIX_HOURS))


def _kinds(messages: list[SimulatedMessage]) -> collections.Counter[str]:
    return collections.Counter(m.kind.split(":")[0] for m in messages)


def test_defaults_inject_nothing(clean_stream: list[SimulatedMessage]) -> None:
    assert NO_FAULTS == FaultConfig()
    assert _kinds(clean_stream) == {"valid": len(clean_stream)}


def test_valid_events_do_not_depend_on_fault_settings(
    clean_stream: list[SimulatedMessage], faulty_stream: list[SimulatedMessage]
) -> None:
    """Faults come from their own random stream: valid + late messages are exactly the clean run."""
    delivered = [m.value for m in faulty_stream if m.kind in ("valid", "late")]
    assert sorted(delivered) == sorted(m.value for m in clean_stream)
    in_order = [m.value for m in faulty_stream if m.kind == "valid"]
    clean_order = [m.value for m in clean_stream]
    it = iter(clean_order)
    assert all(v in it for v in in_order)  # valid ones keep their relative order


def test_rates_are_roughly_as_configured(faulty_stream: list[SimulatedMessage]) -> None:
    kinds = _kinds(faulty_stream)
    base = kinds["valid"] + kinds["late"]
    assert kinds["late"] / base == pytest.approx(0.05, abs=0.005)
    assert kinds["malformed"] / base == pytest.approx(0.05, abs=0.005)
    assert kinds["duplicate"] / base == pytest.approx(0.05, abs=0.005)


def test_duplicates_are_byte_identical_resends_shortly_after(faulty_stream: list[SimulatedMessage]) -> None:
    seen: dict[bytes, int] = {}
    for i, m in enumerate(faulty_stream):
        if m.kind == "duplicate":
            assert m.value in seen, "a duplicate must follow its original"
            original = faulty_stream[seen[m.value]]
            assert original.key == m.key and original.kind in ("valid", "late")
        else:
            seen.setdefault(m.value, i)


def test_late_messages_arrive_after_newer_events_within_max_lateness(faulty_stream: list[SimulatedMessage]) -> None:
    """A late message is sent once the stream has moved on by its lateness (1 s to 5 min).

    Almost always that means after newer events; the rare exception is a late event
    whose successors were all held back too.
    """
    newest = None
    late = displaced = 0
    for m in faulty_stream:
        event = m.event
        if event is None:
            continue
        if m.kind == "late":
            late += 1
            assert newest is not None
            assert newest - event.occurred_at <= dt.timedelta(minutes=5)
            displaced += event.occurred_at < newest
        elif m.kind == "valid":
            newest = event.occurred_at if newest is None else max(newest, event.occurred_at)
    assert late > 1000
    assert displaced / late > 0.95


def test_every_malformed_message_is_rejected_with_its_expected_reason(faulty_stream: list[SimulatedMessage]) -> None:
    decoder = EventDecoder()
    kinds = collections.Counter()
    for m in faulty_stream:
        if not m.kind.startswith("malformed:"):
            continue
        kinds[m.kind] += 1
        with pytest.raises(InvalidEvent) as info:
            decoder.decode(m.value, END)
        assert (info.value.field, info.value.reason.value) == m.expected, (m.kind, m.value[:200])
        assert m.key  # still keyed by the user, like the event it was derived from
    assert set(kinds) == {f"malformed:{k}" for k in MALFORMED_KINDS}


def test_everything_not_malformed_decodes(faulty_stream: list[SimulatedMessage]) -> None:
    decoder = EventDecoder()
    for m in faulty_stream[::7]:
        if not m.kind.startswith("malformed:"):
            decoder.decode(m.value, END)


def test_malformed_kinds_can_be_restricted() -> None:
    faults = FaultConfig(malformed_rate=0.5, malformed_kinds=("bad_country", "truncated"))
    stream = list(islice(backfill(FAULTY_CONFIG, END, window=SIX_HOURS, faults=faults), 3000))
    kinds = {m.kind for m in stream if m.kind.startswith("malformed:")}
    assert kinds == {"malformed:bad_country", "malformed:truncated"}


def test_fault_config_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultConfig(duplicate_rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(malformed_kinds=("nope",))
    with pytest.raises(ValueError):
        FaultConfig(max_lateness=dt.timedelta(0))


def test_live_stream_releases_late_messages_by_the_clock() -> None:
    cfg = SimulationConfig(seed=2, rate=20, diurnal=False)
    faults = FaultConfig(late_rate=0.2, max_lateness=dt.timedelta(seconds=30))
    live = LiveStream(cfg, END, faults=faults)
    now = END
    late_seen = 0
    for _ in range(120):
        now += dt.timedelta(seconds=1)
        for m in live.until(now):
            event = m.event
            assert event is not None and event.occurred_at <= now
            if m.kind == "late":
                late_seen += 1
                assert now - event.occurred_at <= dt.timedelta(seconds=31)
    assert late_seen > 100
