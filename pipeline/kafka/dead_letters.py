"""Dead letters: the original bytes, keyed as they came, with headers that say why, from where and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from confluent_kafka import Message

HEADER_PREFIX = "dlq."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the pipeline will not process, and the reason."""

    key: bytes | None
    value: bytes
    reason: str
    field: str | None
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int | None

    @classmethod
    def from_message(cls, msg: Message, *, reason: str, field: str | None, detail: str) -> DeadLetter:
        ts_type, ts = msg.timestamp()
        return cls(
            key=msg.key(), value=msg.value() or b"", reason=reason, field=field, detail=detail,
            source_topic=msg.topic() or "", source_partition=msg.partition() or 0, source_offset=msg.offset() or 0,
            source_timestamp_ms=ts if ts_type != 0 else None,
        )

    def headers(self, failed_at: dt.datetime, group: str) -> list[tuple[str, bytes]]:
        pairs = {
            "reason": self.reason,
            "field": self.field or "",
            "detail": self.detail[:1000],
            "source.topic": self.source_topic,
            "source.partition": str(self.source_partition),
            "source.offset": str(self.source_offset),
            "source.timestamp_ms": "" if self.source_timestamp_ms is None else str(self.source_timestamp_ms),
            "failed_at": failed_at.isoformat(timespec="milliseconds"),
            "consumer.group": group,
        }
        return [(HEADER_PREFIX + k, v.encode()) for k, v in pairs.items()]


def parse_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The dead-letter headers of a message read back from the topic, without the prefix."""
    return {
        k[len(HEADER_PREFIX):]: v.decode()
        for k, v in (headers or [])
        if k.startswith(HEADER_PREFIX) and v is not None
    }
