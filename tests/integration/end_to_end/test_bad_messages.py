"""No single message can stop the pipeline or make the two stores disagree.

Messages that once stopped ``pipeline consume`` for good, or left PostgreSQL and
OpenSearch holding different copies of an event, are mixed into a stream of good events
from other users on every partition, and read by TWO consumers of one group:

1. values a sink refuses: money the sinks cannot hold as written, and, because the
   contract now stops those at the door, sinks made stricter than the contract (a CHECK
   constraint in PostgreSQL, a narrower mapping in OpenSearch) for whatever a future gap
   might let through;
2. messages too large to dead-letter as they are (about 1 MB, sent with Kafka's own Java
   client, as an ordinary user's producer would);
3. copies of one event with different content, on one partition and on two;
4. JSON that reads one way to a fast path and another to the parser (keys twice,
   escaped keys), next to escaped and reformatted messages that are perfectly valid.

Checked against the independent truth (``tests/support/truth.py``): every good event once
in both stores, with the same content in each; sessions, views and both indices equal to
a plain recomputation; every offending message on the dead-letter topic exactly once,
with its reason; neither consumer ever exits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from pipeline.contract.event import TYPE_RULES, encode_event
from pipeline.kafka.dead_letters import PREFIX_BYTES, parse_headers
from pipeline.simulation import SimulationConfig, backfill
from tests.support.events import event_of_type
from tests.support.java_producer import produce_with_java
from tests.support.kafka_offsets import caught_up
from tests.support.kafka_topics import read_all
from tests.support.process_control import count_events, terminate, wait_for, wait_until_assigned
from tests.support.sink_contents import (
    assert_documents_equal_rows,
    assert_opensearch_matches,
    assert_postgres_matches,
    fetch,
)
from tests.support.truth import unique_events
from tests.support.world import IsolatedPipeline

PARTITIONS = 6
STRICT_PG = "product_id IS NULL OR product_id NOT LIKE 'refuse-pg%%'"
NEAR_LIMIT = 1_047_000
"""A value size the broker accepts (its limit is 1,048,588 bytes per record batch)."""


@dataclass(frozen=True)
class Bad:
    """An offending message and the dead letter it must become."""

    partition: int
    key: bytes | None
    value: bytes
    reason: str
    field: str | None


@dataclass(frozen=True)
class Sent:
    partition: int
    key: bytes | None
    value: bytes


class Shop:
    """Events of users outside the simulated shop, as dicts :func:`render` writes as JSON text the test controls."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.n = 0

    def event(self, event_type: str = "purchase", /, **changes: Any) -> dict[str, Any]:
        """A valid event of ``event_type`` by a user and session of its own, 90 minutes ago; ``changes``
        replace fields afterwards (money as ``RAW:`` text). Its product id, where it has one, is numeric,
        so only the test's own ``refuse-os-*`` ids break the stricter index."""
        self.n += 1
        numeric_product = {"product_id": "777"} if event_type in TYPE_RULES["product_id"] else {}
        event = event_of_type(
            event_type,
            occurred_at=self.now - dt.timedelta(minutes=90) + dt.timedelta(seconds=self.n),
            user_id=f"odd-u-{self.n}",
            session_id=f"odd-s-{self.n}",
            **numeric_product,
        )
        # The contract's own wire form, its numbers kept as written.
        fields: dict[str, Any] = json.loads(encode_event(event), parse_float=lambda number: f"RAW:{number}")
        return fields | changes


def render(event: dict[str, Any], *, separators: tuple[str, str] = (",", ":")) -> bytes:
    """JSON text of ``event``; values written ``RAW:...`` go out verbatim (numbers as the test wrote them)."""
    raws: dict[str, str] = {}
    plain = {}
    for key, value in event.items():
        if isinstance(value, str) and value.startswith("RAW:"):
            marker = f"@@{len(raws)}@@"
            raws[marker] = value[4:]
            plain[key] = marker
        else:
            plain[key] = value
    text = json.dumps(plain, separators=separators, ensure_ascii=False)
    for marker, raw in raws.items():
        text = text.replace(f'"{marker}"', raw)
    return text.encode()


def good_stream(now: dt.datetime) -> list[Sent]:
    """The simulated shop over the last two hours, product ids made numeric for the stricter index."""
    out = []
    for message in islice(backfill(SimulationConfig(seed=1212, rate=2.0), now, window=dt.timedelta(hours=2)), 6000):
        value = message.value.replace(b'"product_id":"p-', b'"product_id":"')
        out.append(Sent(-1, message.key, value))
    return out


def offending(shop: Shop) -> tuple[list[Bad], list[Bad], list[Sent], list[Sent]]:
    """Offending messages (for the project's producer; for Kafka's Java client), and good ones written
    unusually (for the project's producer; for the Java client)."""
    p = iter(range(10_000))
    bad: list[Bad] = []
    java: list[Bad] = []
    good: list[Sent] = []

    def part() -> int:
        return next(p) % PARTITIONS

    def add(event: dict[str, Any], reason: str, field: str | None, *, raw: bytes | None = None) -> None:
        bad.append(Bad(part(), event["user_id"].encode(), raw if raw is not None else render(event), reason, field))

    # 1. values a sink refuses (or refused before the contract bounded them)
    add(shop.event(price="RAW:1." + "0" * 5000), "too_long", "price")
    add(shop.event(price="RAW:" + "9" * 40), "too_long", "price")
    add(shop.event(revenue="RAW:0.00000000000000000000000000000001"), "too_long", "revenue")
    add(shop.event(price="RAW:1e-999999999"), "too_precise", "price")
    for i in range(2):
        add(shop.event(product_id=f"refuse-pg-{i}"), "refused_by_postgres", None)
    for i in range(3):
        add(shop.event(product_id=f"refuse-os-{i}"), "refused_by_opensearch", "product_id")
    for price, revenue in (("1e2", "2E+2"), ("49.900000", "0e-999"), ("0.1E1", "-0")):
        event = shop.event(price=f"RAW:{price}", revenue=f"RAW:{revenue}")
        good.append(Sent(part(), event["user_id"].encode(), render(event)))

    # 2. too large to dead-letter as they are: sent by Kafka's Java client
    def java_bad(value: bytes, reason: str, field: str | None, key: bytes | None = b"big-user") -> None:
        java.append(Bad(part(), key, value, reason, field))

    java_bad(b'{"event_id":"' + b"a" * NEAR_LIMIT, "truncated", None)
    java_bad(
        render(shop.event("search", search_query="q" * NEAR_LIMIT)),
        "too_long",
        "search_query",
    )
    java_bad(b"\x00garbage" * (NEAR_LIMIT // 8), "not_json", None)
    java_bad(b"not json at all", "not_json", None, key=b"k" * NEAR_LIMIT)
    padded = shop.event()
    java_good = [Sent(part(), padded["user_id"].encode(), render(padded) + b" " * NEAR_LIMIT)]

    # 4. one way to a fast path, another to the parser; and messages only written unusually
    dup_user = render(shop.event())[:-1] + b',"user_id":"someone-else"}'
    add({"user_id": "odd-dup-1"}, "duplicate_field", "user_id", raw=dup_user)
    smuggled = render(shop.event())[:-1] + b',"occurred\\u005fat":"2020-01-01T00:00:00.123456+00:00"}'
    add({"user_id": "odd-dup-2"}, "duplicate_field", "occurred_at", raw=smuggled)
    twice_price = render(shop.event())[:-1] + b',"price" : 1.00}'
    add({"user_id": "odd-dup-3"}, "duplicate_field", "price", raw=twice_price)
    same = shop.event()
    same_twice = render(same)[:-1] + f',"os":{json.dumps(same["os"])}}}'.encode()
    add({"user_id": "odd-dup-4"}, "duplicate_field", "os", raw=same_twice)
    escaped = shop.event()
    good.append(
        Sent(
            part(),
            escaped["user_id"].encode(),
            render(escaped)
            .replace(b'"occurred_at"', b'"occurred\\u005fat"')
            .replace(b'"price"', b'"\\u0070rice"')
            .replace(b"T", b"\\u0054", 1),
        )
    )
    pretty = shop.event()
    good.append(
        Sent(
            part(),
            pretty["user_id"].encode(),
            render(dict(reversed(list(pretty.items()))), separators=(",\n  ", " : ")),
        )
    )
    return bad, java, good, java_good


def producer(world: IsolatedPipeline) -> Producer:
    return Producer(world.settings.kafka.client_config("producer") | {"enable.idempotence": True, "acks": "all"})


def send(prod: Producer, topic: str, messages: list[Sent] | list[Bad]) -> None:
    for m in messages:
        if m.partition >= 0:
            prod.produce(topic, m.value, m.key, partition=m.partition)
        else:
            prod.produce(topic, m.value, m.key)
        prod.poll(0)
    assert prod.flush(60) == 0


def stricter_sinks(world: IsolatedPipeline) -> None:
    """A PostgreSQL constraint and an OpenSearch mapping stricter than the contract."""
    with psycopg.connect(world.settings.postgres.conninfo("admin"), autocommit=True) as conn:
        conn.execute(f"ALTER TABLE events ADD CONSTRAINT stricter_than_the_contract CHECK ({STRICT_PG})")
    client = world.opensearch()
    name = f"{world.index_prefix}-events"
    body = client.indices.get_index_template(name=name)["index_templates"][0]["index_template"]
    body.setdefault("template", {})["mappings"] = {"properties": {"product_id": {"type": "long"}}}
    client.indices.put_index_template(name=name, body=body)
    for index in client.indices.get(index=f"{world.index_prefix}-events-*"):
        client.indices.delete(index=index)


def test_offending_messages_of_every_kind_never_stop_two_consumers_nor_split_the_stores(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    world.cli("schema")
    stricter_sinks(world)
    now = dt.datetime.now(dt.UTC)
    shop = Shop(now)
    good = good_stream(now)
    bad, java_bad, tricky, java_tricky = offending(shop)

    # 3. copies of one event: on one partition (offset order decides), on two (timing decides)
    base = shop.event("page_view")
    x1, x2 = render(base), render({**base, "country": "SE"})
    y = shop.event(price="RAW:49.9")
    y1, y2 = render(y), render({**y, "price": "RAW:49.90"})  # the same event once normalised
    z = shop.event("search", search_query="boots")
    z1, z2 = render(z), render({**z, "user_id": "odd-other", "session_id": "odd-other-s", "search_query": "shoes"})
    same_partition = [Sent(2, b"odd-x", x1), Sent(2, b"odd-x", x2), Sent(3, b"odd-y", y1), Sent(3, b"odd-y", y2)]
    cross = [Sent(1, b"odd-z", z1), Sent(4, b"odd-other", z2)]

    logs = [tmp_path / f"consumer-{i}.log" for i in range(2)]
    procs = [world.spawn("consume", "--batch-size", "700", log=log) for log in logs]
    try:
        wait_until_assigned(logs, timeout=90)
        prod = producer(world)
        mixed: list[Sent] = []
        offenders = iter([*bad, *tricky, *same_partition, *cross])
        for i, message in enumerate(good):
            mixed.append(message)
            if i % 150 == 75:
                mixed.extend(islice(offenders, 2))
        mixed.extend(offenders)
        send(prod, world.topics.events, mixed[: len(mixed) // 2])
        produce_with_java(
            world.settings,
            world.topics.events,
            [(m.partition, m.key, m.value) for m in [*java_bad, *java_tricky]],
            tmp_path,
        )
        send(prod, world.topics.events, mixed[len(mixed) // 2 :])

        # a second wave while both run: a later, different copy of a stored event, and more good ones
        wait_for(
            lambda: count_events(world) >= len(unique_events([m.value.decode() for m in good])),
            what="the first wave stored",
            timeout=300,
            process=procs[0],
            log=logs[0],
        )
        late_copy = Bad(5, b"odd-x", render({**base, "browser": "Safari"}), "conflicting_duplicate", "browser")
        fresh = shop.event()
        wave2 = [Sent(5, late_copy.key, late_copy.value), Sent(0, fresh["user_id"].encode(), render(fresh))]
        send(prod, world.topics.events, wave2)
        wait_for(
            lambda: _settled(world),
            what="every message committed by the group",
            timeout=300,
            process=procs[1],
            log=logs[1],
        )
        assert all(p.poll() is None for p in procs), "a consumer exited"
    finally:
        codes = terminate(procs)
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]

    # which copy of the cross-partition event was stored first decides its dead letter
    (winner,) = fetch(world, f"SELECT user_id FROM events WHERE event_id = '{z['event_id']}'")
    won, lost = (z1, z2) if winner["user_id"] == z["user_id"] else (z2, z1)
    lost_partition = 4 if lost is z2 else 1
    expected_bad = [
        *bad,
        *java_bad,
        late_copy,
        Bad(2, b"odd-x", x2, "conflicting_duplicate", "country"),
        Bad(lost_partition, None, lost, "conflicting_duplicate", "user_id"),
    ]

    event_values = [m.value.decode() for m in [*good, *tricky, *java_tricky]] + [
        x1.decode(),
        y1.decode(),
        won.decode(),
        render(fresh).decode(),
    ]
    sessions = assert_postgres_matches(world, event_values)
    expected_ids = set(unique_events(event_values))
    assert_opensearch_matches(world, expected_ids, sessions)
    assert_documents_equal_rows(world)
    _assert_money_as_written(world, tricky)
    _assert_dead_letters(world, expected_bad)


def _settled(world: IsolatedPipeline) -> bool:
    """The group has committed everything in the topic."""
    return caught_up(world.settings, world.topics.group, world.topics.events)


def _assert_money_as_written(world: IsolatedPipeline, tricky: list[Sent]) -> None:
    """Exponents, trailing zeros and negative zero reach both stores as the same exact cents."""
    written = {}
    for message in tricky:
        match = re.search(rb'"event_id":"([0-9a-f-]{36})"', message.value)
        price = re.search(rb'"(?:price|\\u0070rice)"\s*:\s*([-0-9.eE+]+)', message.value)
        if match and price:
            written[match.group(1).decode()] = Decimal(price.group(1).decode())
    rows = {str(r["event_id"]): r for r in fetch(world, "SELECT event_id, price, revenue FROM events")}
    for event_id, price in written.items():
        assert rows[event_id]["price"] == price and rows[event_id]["price"].as_tuple().exponent == -2
        assert not rows[event_id]["revenue"].is_signed()


def _assert_dead_letters(world: IsolatedPipeline, expected: list[Bad]) -> None:
    letters = read_all(world.settings, world.topics.dead_letter)
    unmatched = list(letters)
    for bad in expected:
        found = [m for m in unmatched if _is_letter_of(m.value(), parse_headers(m.headers()), bad)]
        assert len(found) == 1, f"{len(found)} dead letters for {bad.value[:80]!r} ({bad.reason})"
        headers = parse_headers(found[0].headers())
        assert (headers["reason"], headers["field"] or None) == (bad.reason, bad.field), bad.value[:80]
        assert headers["source.topic"] == world.topics.events and int(headers["source.partition"]) == bad.partition
        unmatched.remove(found[0])
    assert unmatched == [], f"{len(unmatched)} unexpected dead letters, e.g. {parse_headers(unmatched[0].headers())}"
    truncated = Counter(parse_headers(m.headers()).get("truncated") for m in letters)
    assert truncated["true"] >= 3, "the oversized messages were not dead-lettered as marked prefixes"


def _is_letter_of(value: bytes, headers: dict[str, str], bad: Bad) -> bool:
    if headers.get("truncated") == "true":
        return (
            int(headers["original_size"]) == len(bad.value)
            and bad.value.startswith(value)
            and len(value) <= PREFIX_BYTES
        )
    return value == bad.value
