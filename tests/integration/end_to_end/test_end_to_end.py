"""The whole pipeline, through its CLI, against the real services, checked against independent truth."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from confluent_kafka import ConsumerGroupType

from pipeline.kafka.dead_letters import parse_headers
from tests.support.kafka_offsets import caught_up, end_offsets, set_group_offsets
from tests.support.kafka_topics import read_all
from tests.support.process_control import count_events, terminate, wait_for, wait_until_assigned
from tests.support.sink_contents import assert_opensearch_matches, assert_postgres_matches, dumped, fetch
from tests.support.truth import unique_events
from tests.support.world import IsolatedPipeline

FAULTY = ["--duplicate-rate", "0.03", "--late-rate", "0.03", "--max-lateness", "20", "--malformed-rate", "0.01"]


def _produce(world: IsolatedPipeline, dump: Path, events: int, seed: int) -> None:
    world.cli(
        "produce", "--events", str(events), "--seed", str(seed), "--window-hours", "6", *FAULTY, "--dump", str(dump)
    )


def test_stream_with_duplicates_late_and_malformed_events_lands_exactly(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    dump = tmp_path / "sent.jsonl"
    world.cli("schema")
    _produce(world, dump, 12_000, seed=11)
    world.cli("consume", "--drain")

    event_values, malformed = dumped(dump)
    assert malformed and len(event_values) > len(unique_events(event_values)), "the stream had no faults to survive"
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, set(unique_events(event_values)), sessions)

    letters = read_all(world.settings, world.topics.dead_letter)
    assert Counter(m.value() for m in letters) == Counter(malformed), (
        "dead letters are not exactly the malformed messages"
    )
    for msg in letters:
        headers = parse_headers(msg.headers())
        assert headers["reason"] and headers["source.topic"] == world.topics.events
        assert int(headers["source.offset"]) >= 0 and headers["failed_at"]


def test_replay_from_the_beginning_changes_nothing(world: IsolatedPipeline, tmp_path: Path) -> None:
    dump = tmp_path / "sent.jsonl"
    world.cli("schema")
    _produce(world, dump, 6_000, seed=12)
    world.cli("consume", "--drain")
    before = {r["session_id"]: r for r in fetch(world, "SELECT * FROM sessions")}

    reset_group_to_beginning(world)
    stats = tmp_path / "replay.json"
    world.cli("consume", "--drain", "--stats-json", str(stats))

    after = {r["session_id"]: r for r in fetch(world, "SELECT * FROM sessions")}
    assert after == before, "re-reading the whole topic changed session rows"
    consumed = json.loads(stats.read_text())
    assert consumed["messages"] > 0 and consumed["events"] > 0, "the replay did not re-read anything"
    event_values, _ = dumped(dump)
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, set(unique_events(event_values)), sessions)


def test_two_consumers_in_one_group_stay_exact(world: IsolatedPipeline, tmp_path: Path) -> None:
    world.cli("schema")
    logs = [tmp_path / f"c{i}.log" for i in range(2)]
    procs = [world.spawn("consume", "--batch-size", "500", log=log) for log in logs]
    try:
        wait_until_assigned(logs, timeout=60)
        dump = tmp_path / "sent.jsonl"
        _produce(world, dump, 12_000, seed=13)
        event_values, _ = dumped(dump)
        expected_ids = set(unique_events(event_values))
        wait_for(lambda: count_events(world) == len(expected_ids), what="every event stored", timeout=240)
        assert group_type(world) == ConsumerGroupType.CONSUMER, "the local Kafka 4 group should use KIP-848"
    finally:
        codes = terminate(procs)
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, expected_ids, sessions)


def test_a_consumer_joining_while_another_has_batches_in_flight_stays_exact(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    """The first consumer gives up partitions while a live stream keeps it writing two batches
    at once: what it had in flight for them is written but not committed by it, the newcomer
    re-reads it, and the stores end exact, with the group's offsets at the end of the topic."""
    world.cli("schema")
    dump = tmp_path / "sent.jsonl"
    logs = [tmp_path / f"c{i}.log" for i in range(2)]
    consume = ("consume", "--batch-size", "200", "--in-flight", "2")
    procs = [world.spawn(*consume, log=logs[0])]
    producer_log = tmp_path / "producer.log"
    producer = None
    try:
        wait_until_assigned(logs[:1], timeout=60)
        live = ("--events", "30000", "--rate", "1500", "--seed", "14")
        faults = ("--duplicate-rate", "0.03", "--malformed-rate", "0.01")
        producer = world.spawn("produce", *live, *faults, "--dump", str(dump), log=producer_log)
        wait_for(lambda: count_events(world) >= 2_000, what="the first consumer under way", timeout=120)
        procs.append(world.spawn(*consume, log=logs[1]))
        wait_for(
            lambda: "revoked partitions" in logs[0].read_text(),
            what="the first consumer giving up partitions",
            timeout=120,
            process=procs[0],
            log=logs[0],
        )
        assert producer.poll() is None, "the partitions moved after the stream had ended"
        assert producer.wait(timeout=120) == 0, producer_log.read_text()[-2000:]
        event_values, malformed = dumped(dump)
        expected_ids = set(unique_events(event_values))
        wait_for(lambda: count_events(world) == len(expected_ids), what="every event stored", timeout=240)
        wait_for(
            lambda: caught_up(world.settings, world.topics.group, world.topics.events),
            what="the group's offsets at the end of the topic",
            timeout=60,
        )
    finally:
        if producer is not None and producer.poll() is None:
            terminate([producer])
        codes = terminate(procs)
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    assert caught_up(world.settings, world.topics.group, world.topics.events), "a stopping member moved an offset back"
    assert "assigned partitions" in logs[1].read_text()
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, expected_ids, sessions)
    letters = read_all(world.settings, world.topics.dead_letter)
    assert {m.value() for m in letters} == set(malformed), "dead letters are not the malformed messages"


def group_type(world: IsolatedPipeline) -> ConsumerGroupType:
    """The protocol the broker runs the group with, as the admin API describes it."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(world.settings.kafka.client_config("admin"))
    return admin.describe_consumer_groups([world.topics.group])[world.topics.group].result().type


def reset_group_to_beginning(world: IsolatedPipeline) -> None:
    offsets = dict.fromkeys(end_offsets(world.settings, world.topics.events), 0)
    set_group_offsets(world.settings, world.topics.group, world.topics.events, offsets)
