"""The stream ``pipeline produce`` sends in backfill, byte for byte: digests of fixed runs.

``tests/unit/simulation/test_simulation_golden.py`` holds the simulation to its digests;
these hold what the produce job adds on top: the probe run that calibrates the rate,
the cut at ``--events``, and the further rounds (derived seeds) that fill a window the
first one left short. The digests were recorded from the job as it stood before its
hot path was reworked for speed; a deliberate change of the stream changes them, and
the commit says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from pipeline.jobs.produce import ProduceOptions, backfill_messages
from pipeline.simulation import FaultConfig

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)

SCENARIOS: dict[str, ProduceOptions] = {
    "60,000 events over 24 h": ProduceOptions(topic="t", seed=1, events=60_000, end_time=END),
    "20,000 events over 1 h (a second round fills the window)": ProduceOptions(
        topic="t", seed=2, events=20_000, end_time=END, window=dt.timedelta(hours=1)
    ),
    "8,000 events over 2 h with faults": ProduceOptions(
        topic="t",
        seed=3,
        events=8_000,
        end_time=END,
        window=dt.timedelta(hours=2),
        faults=FaultConfig(duplicate_rate=0.02, late_rate=0.02, malformed_rate=0.02),
    ),
}

GOLDEN: dict[str, tuple[int, str]] = {
    "60,000 events over 24 h": (60_000, "59139b04b466470b9f3683a6ebbee79afc9199bab923bc77e765bde39125fbdd"),
    "20,000 events over 1 h (a second round fills the window)": (
        20_000,
        "7e14a9b04eaf2476159df7c2839806d173e91c5c0d42943b083b6a475d9ceb0b",
    ),
    "8,000 events over 2 h with faults": (8_000, "46e66c2d0ab00faaf0a58b5946e9c3a03e2463b3ab779dae7b1c4adf24272f81"),
}


def _digest(options: ProduceOptions) -> tuple[int, str]:
    h = hashlib.sha256()
    count = 0
    for m in backfill_messages(options):
        h.update(b"%d:%s %d:%s %s\n" % (len(m.key), m.key, len(m.value), m.value, m.kind.encode()))
        count += 1
    return count, h.hexdigest()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_produce_stream_matches_its_recorded_digest(name: str) -> None:
    assert _digest(SCENARIOS[name]) == GOLDEN[name]
