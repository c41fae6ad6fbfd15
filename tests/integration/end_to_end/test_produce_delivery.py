"""Every message produced is accounted for: delivered, or reported as failed with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.contract.outputs import Output
from tests.support.kafka_topics import read_all
from tests.support.world import IsolatedPipeline


def test_produced_messages_equal_the_dump_and_are_keyed_by_user(world: IsolatedPipeline, tmp_path: Path) -> None:
    dump = tmp_path / "sent.jsonl"
    result = world.cli("produce", "--events", "3000", "--seed", "21", "--dump", str(dump))
    assert "sent 3000, delivered 3000, failed 0" in result.stdout
    sent = [json.loads(line) for line in dump.read_text().splitlines()]
    on_topic = read_all(world.settings, world.topics.events)
    assert sorted((m.key(), m.value()) for m in on_topic) == sorted(
        (s["key"].encode(), s["value"].encode()) for s in sent
    )
    for msg in on_topic:
        assert json.loads(msg.value())["user_id"].encode() == msg.key()
    by_key: dict[bytes, set[int]] = {}
    for msg in on_topic:
        by_key.setdefault(msg.key(), set()).add(msg.partition())
    assert all(len(parts) == 1 for parts in by_key.values()), "one user's events must stay on one partition"


def test_undeliverable_messages_fail_the_command(world: IsolatedPipeline, tmp_path: Path) -> None:
    outputs = json.loads(world.outputs_file.read_text())
    # The consumer's certificate may not write the events topic: every delivery must fail.
    outputs[Output.KAFKA_PRODUCER_CERT.value] = outputs[Output.KAFKA_CONSUMER_CERT.value]
    outputs[Output.KAFKA_PRODUCER_KEY.value] = outputs[Output.KAFKA_CONSUMER_KEY.value]
    world.outputs_file.write_text(json.dumps(outputs))
    result = world.cli("produce", "--events", "50", "--seed", "1", check=False, timeout=120)
    assert result.returncode == 4, result.stderr
    assert "50 of 50 message(s) were not delivered" in result.stderr
    assert "TOPIC_AUTHORIZATION_FAILED" in result.stderr
