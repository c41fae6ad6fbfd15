"""A service goes away for 20 s in the middle of a run: the consumer waits, retries, and finishes exact.

The outage is real: the service's process is stopped with `devstack stop` and started
again with `devstack up`, on the stack the tests run against. The 20 s pause is the
fault itself (how long the service stays down), not a wait for a condition.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.process_control import count_events, count_indexed_events, wait_for
from tests.support.sink_contents import assert_opensearch_matches, assert_postgres_matches, dumped
from tests.support.truth import unique_events
from tests.support.world import IsolatedPipeline

OUTAGE_S = 20.0
DEVSTACK = [sys.executable, "-m", "devstack"]


def _devstack(*args: str) -> None:
    subprocess.run([*DEVSTACK, *args], check=True, capture_output=True, timeout=300)


@pytest.mark.parametrize("in_flight", [1, 2])
@pytest.mark.parametrize("service", ["postgres", "opensearch", "kafka"])
def test_consumer_rides_out_a_service_outage(
    world: IsolatedPipeline, tmp_path: Path, service: str, in_flight: int
) -> None:
    world.cli("schema")
    dump = tmp_path / "sent.jsonl"
    world.cli(
        "produce",
        "--events",
        "20000",
        "--seed",
        "31",
        "--duplicate-rate",
        "0.02",
        "--malformed-rate",
        "0.005",
        "--dump",
        str(dump),
    )
    event_values, _ = dumped(dump)
    expected_ids = set(unique_events(event_values))

    log = tmp_path / "consumer.log"
    consumer = world.spawn("consume", "--batch-size", "300", "--in-flight", str(in_flight), log=log)
    try:
        wait_for(
            lambda: count_events(world) >= 2_000,
            what="the consumer to be mid-run",
            timeout=120,
            process=consumer,
            log=log,
        )
        stored_before = count_events(world)
        _devstack("stop", service)
        try:
            stopped_at = time.monotonic()
            assert consumer.poll() is None, "the consumer died when the service went away"
            time.sleep(OUTAGE_S)
            assert consumer.poll() is None, "the consumer gave up during the outage"
        finally:
            _devstack("up")
        assert time.monotonic() - stopped_at >= OUTAGE_S
        wait_for(lambda: count_events(world) == len(expected_ids), what="every event stored", timeout=300)
        wait_for(lambda: count_indexed_events(world) == len(expected_ids), what="every event indexed", timeout=120)
    finally:
        consumer.terminate()
        code = consumer.wait(timeout=120)
    assert code == 0, log.read_text()[-3000:]
    assert stored_before < len(expected_ids), "the outage came after the work was done"
    noticed = "kafka consumer:" if service == "kafka" else "unavailable"
    assert noticed in log.read_text(), "the consumer never noticed the outage"
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, expected_ids, sessions)
