"""Crashes (SIGKILL, no clean shutdown) of consumers and of the producer leave the sinks exact.

Every test drives the pipeline through its CLI in subprocesses on a private world and
compares the sinks with truth computed independently (tests.support.truth) from what
the producer dumped or from what is really in the topic. No service is stopped here.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pipeline.jobs.consume import FAULT_ENV
from pipeline.jobs.produce import ProduceOptions, backfill_messages
from pipeline.kafka.dead_letters import parse_headers
from pipeline.simulation.dump import parse_dump_line, read_dump
from pipeline.simulation.faults import FaultConfig
from tests.support.kafka_topics import read_all
from tests.support.process_control import (
    count_events,
    count_indexed_events,
    fast_takeover,
    owned_partitions,
    sessions_behind,
    sigkill,
    terminate,
    wait_for,
)
from tests.support.sink_contents import VALID_KINDS, assert_opensearch_matches, assert_postgres_matches, dumped
from tests.support.truth import unique_events
from tests.support.world import IsolatedPipeline

FAULTY = ["--duplicate-rate", "0.03", "--late-rate", "0.03", "--max-lateness", "20", "--malformed-rate", "0.01"]
KILLED = -signal.SIGKILL


def _produce(world: IsolatedPipeline, dump: Path, events: int, seed: int) -> None:
    world.cli(
        "produce", "--events", str(events), "--seed", str(seed), "--window-hours", "6", *FAULTY, "--dump", str(dump)
    )


def _assert_dead_letters_cover_exactly(world: IsolatedPipeline, malformed: list[bytes]) -> None:
    """Dead letters are at-least-once: each malformed message at least once, nothing else, one per source offset."""
    letters = read_all(world.settings, world.topics.dead_letter)
    got = Counter(m.value() for m in letters)
    assert set(got) == set(malformed), "dead letters are not the malformed messages"
    assert all(got[v] >= n for v, n in Counter(malformed).items()), "a malformed message has no dead letter"
    sources = {
        (parse_headers(m.headers())["source.partition"], parse_headers(m.headers())["source.offset"]) for m in letters
    }
    assert len(sources) == len(malformed), "dead letters do not name exactly one source offset per malformed message"


RANDOM_KILLS = int(os.environ.get("CLICKSTREAM_SOAK_KILLS", "3"))
"""Soak mode for manual runs: CLICKSTREAM_SOAK_KILLS=40 kills the consumer 40 times over a
stream grown to match (CI keeps the default, 3)."""


@pytest.mark.parametrize("in_flight", [1, 2])
def test_consumer_killed_at_the_fault_points_and_at_random_moments_ends_exact(
    world: IsolatedPipeline, tmp_path: Path, in_flight: int
) -> None:
    world.cli("schema")
    dump = tmp_path / "sent.jsonl"
    _produce(world, dump, 12_000 * max(1, RANDOM_KILLS // 3), seed=21)
    event_values, malformed = dumped(dump)
    expected_ids = set(unique_events(event_values))
    log = tmp_path / "consumer.log"
    fast_takeover(world)
    consume = ("consume", "--batch-size", "400", "--in-flight", str(in_flight))

    # 1. Batch 3's new events indexed in OpenSearch, its PostgreSQL transaction not committed.
    first = world.spawn(*consume, log=log, env={FAULT_ENV: "after_opensearch_events:3"})
    assert first.wait(timeout=120) == KILLED, log.read_text()[-3000:]
    stored, indexed = count_events(world), count_indexed_events(world)
    assert 0 < stored < indexed, f"not killed between the sinks: {stored} stored, {indexed} indexed"

    # A restarted consumer first re-reads what its predecessor stored without committing: the
    # batches it had in flight and the one or two before them whose asynchronous commits may not
    # have been answered. Killing the next ones at a later batch makes sure they stored new work.
    later = in_flight + 3

    # 2. A batch committed in PostgreSQL (its documents indexed before), its session rows not indexed yet.
    second = world.spawn(*consume, log=log, env={FAULT_ENV: f"after_postgres:{later}"})
    assert second.wait(timeout=120) == KILLED, log.read_text()[-3000:]
    assert count_events(world) > stored and count_indexed_events(world) >= count_events(world)
    assert sessions_behind(world), "every session document was already as new as its row"
    stored = count_events(world)

    # 3. Both sinks written, no dead letter sent, offsets not committed.
    third = world.spawn(*consume, log=log, env={FAULT_ENV: f"after_opensearch:{later}"})
    assert third.wait(timeout=120) == KILLED, log.read_text()[-3000:]
    stored_after = count_events(world)
    assert stored_after > stored
    if in_flight == 1:
        assert count_indexed_events(world) == stored_after
    else:  # the next batch, in flight, may have indexed its new events before its PostgreSQL commit
        assert count_indexed_events(world) >= stored_after

    # 4. Dead letters sent, offsets not committed: the replay sends them again (at-least-once).
    fourth = world.spawn(*consume, log=log, env={FAULT_ENV: "after_dead_letters:2"})
    assert fourth.wait(timeout=120) == KILLED, log.read_text()[-3000:]
    assert read_all(world.settings, world.topics.dead_letter), "no dead letter had been sent before the kill"

    # 3. External SIGKILLs at seeded random moments while batches are being written.
    rng = random.Random(7_2107)
    for _ in range(RANDOM_KILLS):
        proc = world.spawn(*consume, log=log)
        target = min(count_events(world) + rng.randint(300, 1_500), len(expected_ids))
        wait_for(
            lambda target=target: count_events(world) >= target,
            what=f"{target} events stored",
            timeout=120,
            process=proc,
            log=log,
        )
        try:  # then a random moment later (a consumer without --drain never exits by itself)
            proc.wait(timeout=rng.uniform(0.0, 0.3))
        except subprocess.TimeoutExpired:
            pass
        assert sigkill(proc) == KILLED
    assert count_events(world) < len(expected_ids), "every kill came after the work was done: nothing to recover"

    world.cli("consume", "--drain")
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, expected_ids, sessions)
    _assert_dead_letters_cover_exactly(world, malformed)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_survivor_takes_over_the_partitions_of_a_killed_consumer(
    world: IsolatedPipeline, tmp_path: Path, in_flight: int
) -> None:
    world.cli("schema")
    fast_takeover(world)
    logs = [tmp_path / f"c{i}.log" for i in range(2)]
    procs = [world.spawn("consume", "--batch-size", "200", "--in-flight", str(in_flight), log=log) for log in logs]
    try:
        wait_for(lambda: _split_between(logs), what="the partitions split between both consumers", timeout=60)
        dump = tmp_path / "sent.jsonl"
        _produce(world, dump, 12_000, seed=22)
        event_values, malformed = dumped(dump)
        expected_ids = set(unique_events(event_values))
        wait_for(lambda: count_events(world) >= 1_500, what="work in progress", timeout=120)
        survivor_log_before = len(logs[1].read_text())
        assert sigkill(procs[0]) == KILLED
        assert count_events(world) < len(expected_ids), "the victim was killed after all work was done"
        wait_for(
            lambda: "(now [0, 1, 2, 3, 4, 5])" in logs[1].read_text()[survivor_log_before:],
            what="the survivor owning every partition",
            timeout=60,
            process=procs[1],
            log=logs[1],
        )
        wait_for(
            lambda: count_events(world) == len(expected_ids),
            what="every event stored",
            timeout=180,
            process=procs[1],
            log=logs[1],
        )
        wait_for(lambda: count_indexed_events(world) == len(expected_ids), what="every event indexed", timeout=60)
    finally:
        codes = terminate(procs)
    assert codes == [KILLED, 0], logs[1].read_text()[-2000:]
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, expected_ids, sessions)
    _assert_dead_letters_cover_exactly(world, malformed)


def _split_between(logs: list[Path]) -> bool:
    a, b = (owned_partitions(log.read_text()) for log in logs)
    return bool(a) and bool(b) and not a & b and a | b == set(range(6))


def test_killed_producer_leaves_no_partial_message_and_the_sinks_match_the_topic(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    world.cli("schema")
    end_time = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    killed_events, killed_seed = 200_000, 31
    dump1, dump2 = tmp_path / "killed.jsonl", tmp_path / "second.jsonl"
    log = tmp_path / "producer.log"
    producer = world.spawn(
        "produce",
        "--events",
        str(killed_events),
        "--seed",
        str(killed_seed),
        "--end-time",
        end_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "--window-hours",
        "6",
        *FAULTY,
        "--dump",
        str(dump1),
        log=log,
    )
    wait_for(
        lambda: dump1.exists() and dump1.stat().st_size > 1_500_000,
        what="the producer well under way",
        timeout=60,
        process=producer,
        log=log,
    )
    assert sigkill(producer) == KILLED
    _produce(world, dump2, 3_000, seed=32)

    # The truth is what IS in the topic: what the killed producer handed to librdkafka may or may not be there.
    in_topic = [m.value() for m in read_all(world.settings, world.topics.events)]
    second_kinds = {record.value: record.kind for record in read_dump(dump2)}
    assert all(Counter(in_topic)[v] >= 1 for v in second_kinds), "the completed run was not fully delivered"

    # The killed run's stream, regenerated from its seed (deterministic), must contain every other message
    # byte for byte: nothing truncated, nothing corrupt. Its dump (buffered, cut by the kill) is a prefix of it.
    regenerated = backfill_messages(
        ProduceOptions(
            topic=world.topics.events,
            seed=killed_seed,
            events=killed_events,
            end_time=end_time.replace(tzinfo=dt.UTC),
            window=dt.timedelta(hours=6),
            faults=FaultConfig(
                duplicate_rate=0.03, late_rate=0.03, max_lateness=dt.timedelta(minutes=20), malformed_rate=0.01
            ),
        )
    )
    dumped_prefix = dump1.read_bytes().split(b"\n")[:-1]  # the last piece may be cut mid-line
    wanted = {v for v in in_topic if v not in second_kinds}
    first_kinds: dict[bytes, str] = {}
    for i, msg in enumerate(regenerated):
        if i < len(dumped_prefix):
            record = parse_dump_line(dumped_prefix[i])
            assert (record.kind, record.value) == (msg.kind, msg.value), f"regenerated stream differs at {i}"
        if msg.value in wanted:
            first_kinds[msg.value] = msg.kind
            wanted.discard(msg.value)
        if not wanted and i >= len(dumped_prefix):
            break
    assert not wanted, f"{len(wanted)} message(s) in the topic were never sent: partial or corrupt"
    run1_in_topic = sum(1 for v in in_topic if v in first_kinds)
    assert 0 < run1_in_topic < killed_events, "the producer was not killed mid-run"

    kinds = first_kinds | second_kinds
    event_values = [v.decode() for v in in_topic if kinds[v] in VALID_KINDS]
    malformed = [v for v in in_topic if kinds[v] not in VALID_KINDS]
    assert malformed and all(kinds[v].startswith("malformed:") for v in malformed)

    world.cli("consume", "--drain")
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, set(unique_events(event_values)), sessions)
    letters = read_all(world.settings, world.topics.dead_letter)
    assert Counter(m.value() for m in letters) == Counter(malformed), "dead letters are not exactly the malformed ones"
