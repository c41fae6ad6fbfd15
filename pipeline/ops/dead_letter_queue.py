"""Reading the dead-letter topic, and sending chosen dead letters back to the events topic.

Reading uses the admin certificate (the consumer may only write dead letters, not read
them), assigns partitions directly (no group, nothing committed) and decodes every
``dlq.*`` header generically, so headers added later show up without a change here.
A dead letter is named ``PARTITION:OFFSET`` in the dead-letter topic.

Replaying writes with the producer certificate, the only principal allowed to write
events: the original key and bytes go to the stack's events topic, with a ``replay.of``
header naming the dead letter. The consumer decodes them again; an event stored before
is dropped by its ``event_id`` in both sinks, so replaying twice changes nothing, and a
message that is still invalid simply becomes a new dead letter. Refused before anything
is sent: a dead letter that holds only a prefix of the original message
(``dlq.truncated=true``) and one whose source is another topic.
"""

from __future__ import annotations

import base64
import datetime as dt
import heapq
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from pipeline.config.settings import KafkaSettings
from pipeline.errors import ConfigError, DeliveryError, ServiceError, first_line
from pipeline.kafka.dead_letters import HEADER_PREFIX
from pipeline.kafka.producer import TrackedProducer
from pipeline.kafka.records import coordinates
from pipeline.ops.group import admin_client, topic_offsets

REPLAY_HEADER: Final = "replay.of"
PREVIEW_CHARS: Final = 300
_ID = re.compile(r"(\d+):(\d+)")


@dataclass(frozen=True)
class StoredDeadLetter:
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    """Every ``dlq.*`` header, prefix included, decoded as UTF-8 (undecodable bytes replaced)."""

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        return self.headers.get(HEADER_PREFIX + name)

    @property
    def truncated(self) -> bool:
        return (self.header("truncated") or "").lower() == "true"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": None
            if self.timestamp_ms is None
            else dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC).isoformat(timespec="milliseconds"),
            "size": len(self.value),
            "headers": dict(self.headers),
        }
        for name, data in (("key", self.key), ("value", self.value)):
            if data is None:
                out[name] = None
                continue
            try:
                out[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                out[name] = None
                out[f"{name}_base64"] = base64.b64encode(data).decode("ascii")
        return out


def parse_ids(ids: Iterable[str]) -> list[tuple[int, int]]:
    """``PARTITION:OFFSET`` strings as pairs, in the order given, without repeats."""
    out: list[tuple[int, int]] = []
    for raw in ids:
        match = _ID.fullmatch(raw.strip())
        if match is None:
            raise ConfigError(
                f"a dead letter is named PARTITION:OFFSET (as `pipeline dead-letters` lists it), "
                f"not {safe_text(raw)[:40]!r}"
            )
        pair = (int(match.group(1)), int(match.group(2)))
        if pair not in out:
            out.append(pair)
    return out


def _letter(msg: Message) -> StoredDeadLetter:
    ts_type, ts = msg.timestamp()
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = {k: _text(v) for k, v in pairs if k.startswith(HEADER_PREFIX)}
    _, partition, offset = coordinates(msg)
    return StoredDeadLetter(partition, offset, ts if ts_type != 0 else None, msg.key(), msg.value() or b"", headers)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _reader(kafka: KafkaSettings) -> Consumer:
    return Consumer(
        kafka.client_config("admin")
        | {
            "group.id": "clickstream-dead-letter-reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "log_level": 0,
        }
    )


def _read(kafka: KafkaSettings, wanted: dict[int, tuple[int, int]], *, timeout: float) -> list[StoredDeadLetter]:
    """The messages of ``partition -> [start, stop)`` ranges of the dead-letter topic."""
    topic = kafka.dead_letter_topic
    wanted = {p: r for p, r in wanted.items() if r[1] > r[0]}
    if not wanted:
        return []
    consumer = _reader(kafka)
    out: list[StoredDeadLetter] = []
    try:
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in wanted.items()])
        remaining = {p: stop for p, (_, stop) in wanted.items()}
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka: reading {topic} timed out with partitions {sorted(remaining)} unfinished")
            for msg in consumer.consume(500, 1.0):
                error = msg.error()
                if error is not None:
                    if error.fatal() or not error.retriable():
                        raise ServiceError(f"Kafka: reading {topic} failed: {first_line(error.str())}")
                    continue
                _, p, offset = coordinates(msg)
                if p in remaining and offset < remaining[p]:
                    out.append(_letter(msg))
                    if offset + 1 >= remaining[p]:
                        del remaining[p]
    except KafkaException as exc:
        raise ServiceError(f"Kafka: reading {topic} failed: {first_line(exc.args[0].str())}") from None
    finally:
        consumer.close()
    return out


def newest(
    kafka: KafkaSettings, limit: int, *, reason: str | None = None, timeout: float = 60.0
) -> list[StoredDeadLetter]:
    """The ``limit`` newest dead letters (by the time they were written), oldest of them first.

    Without ``reason`` only the last ``limit`` messages of each partition are read; with
    it, the whole topic is, since the newest matches may be anywhere.
    """
    offsets = topic_offsets(admin_client(kafka, "admin"), kafka.dead_letter_topic)
    if reason is None:
        letters = _read(
            kafka, {p: (max(low, high - limit), high) for p, (low, high) in offsets.items()}, timeout=timeout
        )
    else:
        letters = [x for x in _read(kafka, offsets, timeout=timeout) if x.header("reason") == reason]
    return sorted(heapq.nlargest(limit, letters, key=_order), key=_order)


def _order(letter: StoredDeadLetter) -> tuple[int, int, int]:
    return (letter.timestamp_ms or 0, letter.partition, letter.offset)


def fetch(kafka: KafkaSettings, ids: Sequence[tuple[int, int]], *, timeout: float = 60.0) -> list[StoredDeadLetter]:
    """The named dead letters, in the order named; ConfigError for a name that is not in the topic."""
    offsets = topic_offsets(admin_client(kafka, "admin"), kafka.dead_letter_topic)
    missing = [f"{p}:{o}" for p, o in ids if p not in offsets or not offsets[p][0] <= o < offsets[p][1]]
    if missing:
        raise ConfigError(
            f"no dead letter {', '.join(missing)} in {kafka.dead_letter_topic} (list them with `pipeline dead-letters`)"
        )
    ranges: dict[int, tuple[int, int]] = {}
    for p, o in ids:
        start, stop = ranges.get(p, (o, o + 1))
        ranges[p] = (min(start, o), max(stop, o + 1))
    found = {(x.partition, x.offset): x for x in _read(kafka, ranges, timeout=timeout)}
    return [found[pair] for pair in ids]


@dataclass(frozen=True)
class ReplayResult:
    sent: int
    topic: str

    def line(self) -> str:
        return f"replayed {self.sent} dead letter{'s' if self.sent != 1 else ''} to {self.topic}"


def check_replayable(letters: Sequence[StoredDeadLetter], events_topic: str) -> None:
    """ConfigError naming every letter that must not go back (nothing is sent then)."""
    truncated = [x.id for x in letters if x.truncated]
    if truncated:
        raise ConfigError(
            f"dead letter{'s' if len(truncated) > 1 else ''} {', '.join(truncated)} "
            f"hold{'s' if len(truncated) == 1 else ''} only the first bytes of a message too large to keep "
            "(dlq.truncated=true); the original cannot be replayed from the dead-letter topic. Nothing was replayed"
        )
    foreign = [x.id for x in letters if (x.header("source.topic") or events_topic) != events_topic]
    if foreign:
        raise ConfigError(
            f"dead letter(s) {', '.join(foreign)} came from another topic than {events_topic}; nothing was replayed"
        )


def replay(kafka: KafkaSettings, letters: Sequence[StoredDeadLetter], *, timeout: float = 120.0) -> ReplayResult:
    check_replayable(letters, kafka.events_topic)
    producer = TrackedProducer(kafka, "producer", {"linger.ms": 5})
    for letter in letters:
        origin = f"{kafka.dead_letter_topic}/{letter.partition}/{letter.offset}".encode()
        producer.send(kafka.events_topic, letter.key, letter.value, headers=[(REPLAY_HEADER, origin)])
    stats = producer.flush_all(timeout)
    failed = stats.failed + producer.pending
    if failed:
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.items())) or "no delivery report"
        raise DeliveryError(
            f"{failed} of {len(letters)} replayed message(s) were not delivered to "
            f"{kafka.events_topic} ({kinds}); replaying them again is safe"
        )
    return ReplayResult(len(letters), kafka.events_topic)


def safe_text(text: str) -> str:
    """``text`` with every control, format or separator character except the space shown as an escape.

    Dead letters hold whatever was sent; printed raw, their bytes could move the cursor,
    recolour the terminal or reorder the line (bidi overrides).
    """
    return "".join(
        ch if ch == " " or unicodedata.category(ch)[0] not in "CZ" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def render(letters: Sequence[StoredDeadLetter], topic: str) -> str:
    if not letters:
        return f"no dead letters in {topic}"
    blocks = []
    for x in letters:
        when = (
            ""
            if x.timestamp_ms is None
            else dt.datetime.fromtimestamp(x.timestamp_ms / 1000, dt.UTC).strftime(" at %Y-%m-%d %H:%M:%S UTC")
        )
        lines = [
            f"{x.id}{when}: {safe_text(x.header('reason') or 'no reason given')}"
            + (f" (field {safe_text(x.header('field') or '')})" if x.header("field") else "")
        ]
        for name, value in sorted(x.headers.items()):
            if name not in (HEADER_PREFIX + "reason", HEADER_PREFIX + "field"):
                lines.append(f"    {safe_text(name)}: {safe_text(value)[:PREVIEW_CHARS]}")
        preview = safe_text(x.value.decode("utf-8", "replace"))
        cut = "..." if len(preview) > PREVIEW_CHARS else ""
        lines.append(f"    value ({len(x.value):,} bytes): {preview[:PREVIEW_CHARS]}{cut}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + f"\n{len(letters)} dead letter{'s' if len(letters) != 1 else ''} shown from {topic}"
