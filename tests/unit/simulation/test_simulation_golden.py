"""The simulated stream, byte for byte: digests of fixed runs, recorded once and held.

Every other test of the simulation checks properties (order, rates, the session rule);
these check that the stream itself does not move. The digests were recorded from the
engine as it stood before it was split into modules, so they are an independent
record of what the code must keep producing: a refactoring must leave them untouched.
A deliberate change of the stream (another walk, another id layout) changes them on
purpose; record the new values then, and say why in the commit.

Each scenario covers a different path: backfill with the daily curve and without,
fault injection, a configuration that touches every knob, time compression at high
rates, and live mode under an irregular clock (batch boundaries and ``next_due``
included in the digest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable

import pytest

from pipeline.simulation import NO_FAULTS, FaultConfig, LiveStream, SimulatedMessage, SimulationConfig, backfill

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
FAULTS = FaultConfig(duplicate_rate=0.03, late_rate=0.03, malformed_rate=0.03, max_lateness=dt.timedelta(minutes=5))
CUSTOM_SHOP = SimulationConfig(
    seed=4,
    rate=4.0,
    users=300,
    host="https://shop.test",
    device_weights=(("desktop", 0.5), ("tablet", 0.5)),
    country_weights=(("FI", 2.0), ("SE", 1.0), ("NO", 1.0)),
    channel_weights=(("email", 0.5), ("paid", 0.3), ("organic", 0.2)),
    bounce_rate=0.2,
    add_to_cart_rate=0.3,
    checkout_rate=0.8,
    purchase_rate=0.9,
    idle_rate=0.1,
    diurnal=False,
    user_skew=2.0,
    max_events_per_visit=12,
)
# Irregular clock steps in ms for the live scenarios: same-ms polls, odd gaps, long gaps.
STEPS_MS = (0, 1, 7, 137, 1000, 0, 2500, 333, 12_000, 49)


def _update(h: hashlib._Hash, m: SimulatedMessage) -> None:
    expected = b"" if m.expected is None else repr(m.expected).encode()
    h.update(b"%d:%s %d:%s %s %s\n" % (len(m.key), m.key, len(m.value), m.value, m.kind.encode(), expected))


def _digest(messages: Iterable[SimulatedMessage]) -> tuple[int, str]:
    h = hashlib.sha256()
    count = 0
    for m in messages:
        _update(h, m)
        count += 1
    return count, h.hexdigest()


def _live(config: SimulationConfig, faults: FaultConfig, minutes: int) -> tuple[int, str]:
    live = LiveStream(config, END, faults=faults)
    h = hashlib.sha256()
    count = 0
    now = END
    stop = END + dt.timedelta(minutes=minutes)
    i = 0
    while now < stop:
        now += dt.timedelta(milliseconds=STEPS_MS[i % len(STEPS_MS)])
        i += 1
        batch = live.until(now)
        due = live.next_due()
        h.update(b"batch %d due %s\n" % (len(batch), due.isoformat().encode() if due else b"-"))
        for m in batch:
            _update(h, m)
        count += len(batch)
    return count, h.hexdigest()


SCENARIOS: dict[str, Callable[[], tuple[int, str]]] = {
    "backfill 3 h, flat": lambda: _digest(
        backfill(SimulationConfig(seed=1, rate=5.0, diurnal=False), END, window=dt.timedelta(hours=3))
    ),
    "backfill 24 h, daily curve": lambda: _digest(backfill(SimulationConfig(seed=2, rate=0.5), END)),
    "backfill 2 h, faults": lambda: _digest(
        backfill(SimulationConfig(seed=3, rate=5.0), END, window=dt.timedelta(hours=2), faults=FAULTS)
    ),
    "backfill 2 h, every knob": lambda: _digest(backfill(CUSTOM_SHOP, END, window=dt.timedelta(hours=2))),
    "backfill 2 min, compressed time": lambda: _digest(
        backfill(
            SimulationConfig(seed=5, rate=300.0, diurnal=False, max_concurrency=300),
            END,
            window=dt.timedelta(minutes=2),
        )
    ),
    "live 1 h, irregular clock": lambda: _live(SimulationConfig(seed=6, rate=6.0, diurnal=False), NO_FAULTS, 60),
    "live 1 h, irregular clock, faults": lambda: _live(SimulationConfig(seed=7, rate=4.0, diurnal=False), FAULTS, 60),
}

GOLDEN: dict[str, tuple[int, str]] = {
    "backfill 3 h, flat": (53398, "31c24d4c75e8d4dd8a0a407fc3d5e68bd8b1a7acf12fa5627e0eb19b41f07fba"),
    "backfill 24 h, daily curve": (45066, "8d4f9c17b636bbcb576343aeae62d9ee5a6486b6c20d3df8d2d34059bf5621e5"),
    "backfill 2 h, faults": (43963, "f03b95b7b51bcb11676eb10b5335a651cb46876279ddeccb0e9f828f1b1cfe71"),
    "backfill 2 h, every knob": (8702, "3b5b5a7ddaeb76d82cb7643322ab65e294bbb8197ba17a0d7ff967fdf8e3a875"),
    "backfill 2 min, compressed time": (35714, "5c52763954abe9a7af28e6a37501797b6d983a559e96e4ce723bde1dc92050c6"),
    "live 1 h, irregular clock": (21764, "789613b623008ae30e4fb38efab90ed48af380ea0a9e3306478e05a36c928125"),
    "live 1 h, irregular clock, faults": (15012, "12b6fb0ebea22435b93048fddace75d6a9da68e79da8c817096e73c0e471977c"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_stream_matches_its_recorded_digest(name: str) -> None:
    assert SCENARIOS[name]() == GOLDEN[name]
