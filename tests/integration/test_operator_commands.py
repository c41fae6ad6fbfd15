"""`pipeline status` with a running consumer, and `pipeline dead-letters` listing and replaying, on the local stack.

Expected values come from elsewhere: what was sent (the producer's --dump), the topic's
own offsets read with a plain Kafka client, and the stores read directly.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer

from pipeline.contract.event import format_timestamp
from pipeline.ops.status import read_status
from tests.support.kafka_offsets import end_offsets
from tests.support.kafka_topics import read_all
from tests.support.process_control import wait_for
from tests.support.sink_contents import dumped, fetch
from tests.support.sink_readers import document_count
from tests.support.truth import parse_event
from tests.support.world import IsolatedPipeline


def newest_event_time(event_values: list[str]) -> dt.datetime:
    return max(parse_event(v)["occurred_at"] for v in event_values)


def test_status_shows_the_running_member_its_partitions_offsets_lag_and_the_stores(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    world.cli("schema")
    log = tmp_path / "consumer.log"
    consumer = world.spawn("consume", log=log)
    try:
        dump = tmp_path / "sent.jsonl"
        world.cli("produce", "--events", "1500", "--malformed-rate", "0.02", "--dump", str(dump))
        events, malformed = dumped(dump)
        ends = end_offsets(world.settings, world.topics.events)
        assert sum(ends.values()) == 1500

        def caught_up() -> bool:
            s = read_status(world.settings, index_prefix=world.index_prefix)
            stores = {f.store: f.newest_event for f in s.stores}
            return (
                s.group is not None
                and s.group.total_lag == 0
                and len(s.group.members) == 1
                and stores["OpenSearch"] is not None
                and stores["PostgreSQL"] is not None
            )

        wait_for(
            caught_up, what="the consumer to catch up and OpenSearch to show it", timeout=180, process=consumer, log=log
        )
        shown = json.loads(world.cli("status", "--json").stdout)
        text = world.cli("status").stdout
    finally:
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=120) == 0, log.read_text()[-2000:]

    group = shown["consumer_group"]
    assert group["group"] == world.topics.group and group["state"] == "STABLE"
    (member,) = group["members"]
    assert member["partitions"] == sorted(ends)
    assert member["client_id"] == "clickstream-pipeline-consumer"
    assert {p["partition"]: (p["committed"], p["end"], p["lag"]) for p in group["partitions"]} == {
        p: (end, end, 0) for p, end in ends.items()
    }
    assert group["total_lag"] == 0
    assert shown["dead_letters"] == {"topic": world.topics.dead_letter, "messages": len(malformed), "error": None}
    newest = format_timestamp(newest_event_time(events))
    for store in shown["stores"]:
        assert store["newest_event"] == newest and store["error"] is None, store
        assert store["behind_s"] >= 0
    assert f"consumer group {world.topics.group} on {world.topics.events}: stable, 1 member" in text
    assert "partitions 0,1,2,3,4,5" in text and "total lag 0 messages" in text
    assert f"dead-letter topic {world.topics.dead_letter}: {len(malformed)} message" in text

    world.cli("produce", "--events", "700")
    after = json.loads(world.cli("status", "--json").stdout)["consumer_group"]
    assert after["members"] == [] and after["state"] == "EMPTY"
    assert after["total_lag"] == 700 == sum(p["end"] - p["committed"] for p in after["partitions"])


def _write_dead_letter(world: IsolatedPipeline, value: bytes, **headers: str) -> None:
    """A dead letter as the consumer writes one (its headers), put there with the admin certificate."""
    producer = Producer(world.settings.kafka.client_config("admin"))
    base = {
        "reason": "refused_by_opensearch",
        "field": "",
        "detail": "mapper_parsing_exception",
        "source.topic": world.topics.events,
        "source.partition": "0",
        "source.offset": "0",
        "source.timestamp_ms": "",
        "failed_at": "2026-11-30T00:00:00.000+00:00",
        "consumer.group": world.topics.group,
    }
    base.update({k.replace("_", "."): v for k, v in headers.items()})
    producer.produce(
        world.topics.dead_letter, value, b"user-x", headers=[(f"dlq.{k}", v.encode()) for k, v in base.items()]
    )
    assert producer.flush(30) == 0


def _event(event_id: str) -> bytes:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return json.dumps(
        {
            "event_id": event_id,
            "schema_version": 1,
            "event_type": "page_view",
            "occurred_at": format_timestamp(now),
            "user_id": "user-x",
            "session_id": "s-replay",
            "page_url": "https://shop.example.com/p/1",
            "referrer": None,
            "utm_source": None,
            "utm_medium": None,
            "utm_campaign": None,
            "device_type": "mobile",
            "browser": "Safari",
            "os": "iOS",
            "country": "FR",
            "element_id": None,
            "search_query": None,
            "product_id": None,
            "price": None,
            "order_id": None,
            "revenue": None,
        }
    ).encode()


def _stored(world: IsolatedPipeline, event_id: str) -> tuple[int, int]:
    rows = fetch(world, f"SELECT count(*) AS n FROM events WHERE event_id = '{event_id}'")
    indexed = document_count(world.opensearch(), f"{world.index_prefix}-events", {"ids": {"values": [event_id]}})
    return int(rows[0]["n"]), indexed


def test_dead_letters_are_listed_with_their_reasons_and_replayed_once(world: IsolatedPipeline, tmp_path: Path) -> None:
    world.cli("schema")
    dump = tmp_path / "sent.jsonl"
    world.cli("produce", "--events", "800", "--malformed-rate", "0.05", "--dump", str(dump))
    world.cli("consume", "--drain")
    _, malformed = dumped(dump)
    assert malformed

    listed = json.loads(world.cli("dead-letters", "--json", "--limit", "10000").stdout)
    assert Counter(x["size"] for x in listed) == Counter(len(v) for v in malformed)
    raw = {(m.partition(), m.offset()): m.value() for m in read_all(world.settings, world.topics.dead_letter)}
    assert {(x["partition"], x["offset"]) for x in listed} == set(raw)
    for x in listed:
        value = x["value"].encode() if x["value"] is not None else __import__("base64").b64decode(x["value_base64"])
        assert value == raw[(x["partition"], x["offset"])]
        assert x["headers"]["dlq.reason"] and x["headers"]["dlq.source.topic"] == world.topics.events
    text = world.cli("dead-letters", "--limit", "3").stdout
    newest = sorted(listed, key=lambda x: (x["timestamp"], x["partition"], x["offset"]))[-3:]
    for x in newest:
        assert f"{x['id']} at " in text and f": {x['headers']['dlq.reason']}" in text
    assert text.strip().endswith(f"3 dead letters shown from {world.topics.dead_letter}")

    # A valid event the sink refused earlier (the fix is in): replayed, it is stored once, however often.
    event_id = str(uuid.uuid4())
    _write_dead_letter(world, _event(event_id))
    (refused,) = json.loads(world.cli("dead-letters", "--json", "--reason", "refused_by_opensearch").stdout)
    for _ in range(2):
        out = world.cli("dead-letters", "--replay", refused["id"])
        assert f"dead-letters: replayed 1 dead letter to {world.topics.events}" in out.stdout
        world.cli("consume", "--drain")
        assert _stored(world, event_id) == (1, 1)

    # A still-invalid one goes back to the dead-letter topic with the same reason; nothing is stored.
    before = fetch(world, "SELECT count(*) AS n FROM events")[0]["n"]
    bad = listed[0]
    world.cli("dead-letters", "--replay", bad["id"])
    world.cli("consume", "--drain")
    again = json.loads(world.cli("dead-letters", "--json", "--limit", "1").stdout)[0]
    assert again["value"] == bad["value"] and again["headers"]["dlq.reason"] == bad["headers"]["dlq.reason"]
    assert fetch(world, "SELECT count(*) AS n FROM events")[0]["n"] == before

    # A truncated one (only a prefix kept) is refused with one line, and nothing is sent.
    _write_dead_letter(world, b'{"event_id": "cut', reason="too_large", truncated="true", original_size="2000000")
    (cut,) = json.loads(world.cli("dead-letters", "--json", "--reason", "too_large").stdout)
    ends = end_offsets(world.settings, world.topics.events)
    refusal = world.cli("dead-letters", "--replay", cut["id"], "--replay", refused["id"], check=False)
    assert refusal.returncode == 2
    (line,) = refusal.stderr.strip().splitlines()
    assert line.startswith(f"pipeline: error: dead letter {cut['id']} holds only the first bytes")
    assert "dlq.truncated=true" in line and "Nothing was replayed" in line
    assert end_offsets(world.settings, world.topics.events) == ends
