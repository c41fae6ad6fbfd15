"""Dead letters: the original bytes, keyed as they came, with headers that say why, from where and when.

A dead letter must never fail for its size. A message just under the broker's limit no
longer fits once the ``dlq.*`` headers are added, so each letter is sized before it is
sent: it keeps the original value when key, value and headers fit in
:data:`DEAD_LETTER_MAX_BYTES` (the dead-letter producer's own ``message.max.bytes``),
else it carries the first :data:`PREFIX_BYTES` of the value with ``dlq.truncated`` =
``true`` and ``dlq.original_size`` = the original value's size in bytes (and a key longer
than :data:`KEY_PREFIX_BYTES` is cut too, with ``dlq.original_key_size``). The source
coordinates (``dlq.source.*``) still identify the original message, which stays in the
events topic until its retention ends. If the broker still refuses a letter as too large
(the dead-letter topic's ``max.message.bytes`` may be smaller than the producer's limit),
it is sent once more with a :data:`LAST_RESORT_PREFIX_BYTES` prefix. Any other failure
to deliver is a :class:`~pipeline.errors.DeliveryError`: one line, exit 4, the batch not
committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.config.settings import KafkaSettings
from pipeline.errors import DeliveryError

log = logging.getLogger(__name__)

HEADER_PREFIX: Final = "dlq."
TRUNCATED: Final = "truncated"
"""Header ``dlq.truncated``: ``true`` when the value is only a prefix of the original (absent otherwise)."""
ORIGINAL_SIZE: Final = "original_size"
"""Header ``dlq.original_size``: the original value's size in bytes, present only when truncated."""
ORIGINAL_KEY_SIZE: Final = "original_key_size"
"""Header ``dlq.original_key_size``: the original key's size in bytes, present only when the key was cut."""

DEAD_LETTER_MAX_BYTES: Final = 1_000_000
"""The dead-letter producer's ``message.max.bytes`` (librdkafka's default, below Kafka's
default broker and topic limit of 1,048,588): a letter is sized to fit in it."""
RECORD_OVERHEAD_BYTES: Final = 1024
"""A generous bound on what Kafka adds around a record (batch header, varints, per-header lengths)."""
PREFIX_BYTES: Final = 64 * 1024
"""The part of an oversized value a truncated dead letter keeps."""
KEY_PREFIX_BYTES: Final = 1024
LAST_RESORT_PREFIX_BYTES: Final = 1024
"""What a letter keeps when the broker refused it as too large even truncated."""
DETAIL_MAX: Final = 1000

PRODUCER_CONFIG: Final[Mapping[str, object]] = {
    "acks": "all",
    # Dead letters are at-least-once (a replay sends them again) and carry their source
    # coordinates, so the idempotent producer's ordering buys nothing here, and without it
    # a letter the broker refuses cannot turn into a fatal producer error.
    "enable.idempotence": False,
    "compression.type": "lz4",
    "linger.ms": 5,
    "message.max.bytes": DEAD_LETTER_MAX_BYTES,
    "delivery.timeout.ms": 120_000,
    "delivery.report.only.error": True,
    "log_level": 3,
}

_TOO_LARGE: Final = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})


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
            key=msg.key(),
            value=msg.value() or b"",
            reason=reason,
            field=field,
            detail=detail,
            source_topic=msg.topic() or "",
            source_partition=msg.partition() or 0,
            source_offset=msg.offset() or 0,
            source_timestamp_ms=ts if ts_type != 0 else None,
        )

    def headers(self, failed_at: dt.datetime, group: str) -> list[tuple[str, bytes]]:
        pairs = {
            "reason": self.reason,
            "field": self.field or "",
            "detail": self.detail[:DETAIL_MAX],
            "source.topic": self.source_topic,
            "source.partition": str(self.source_partition),
            "source.offset": str(self.source_offset),
            "source.timestamp_ms": "" if self.source_timestamp_ms is None else str(self.source_timestamp_ms),
            "failed_at": failed_at.isoformat(timespec="milliseconds"),
            "consumer.group": group,
        }
        return [(HEADER_PREFIX + k, v.encode()) for k, v in pairs.items()]

    def record(
        self, failed_at: dt.datetime, group: str, *, limit: int = DEAD_LETTER_MAX_BYTES, prefix: int = PREFIX_BYTES
    ) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        """(key, value, headers) of the letter, fitting in ``limit`` bytes (see the module docstring)."""
        headers = self.headers(failed_at, group)
        if record_size(self.key, self.value, headers) <= limit:
            return self.key, self.value, headers
        key = self.key
        headers.append((HEADER_PREFIX + TRUNCATED, b"true"))
        headers.append((HEADER_PREFIX + ORIGINAL_SIZE, str(len(self.value)).encode()))
        if key is not None and len(key) > KEY_PREFIX_BYTES:
            headers.append((HEADER_PREFIX + ORIGINAL_KEY_SIZE, str(len(key)).encode()))
            key = key[:KEY_PREFIX_BYTES]
        return key, self.value[:prefix], headers


def record_size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> int:
    """An upper bound of the bytes a record takes towards ``message.max.bytes``."""
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers) + RECORD_OVERHEAD_BYTES


def parse_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The dead-letter headers of a message read back from the topic, without the prefix."""
    return {
        k[len(HEADER_PREFIX) :]: v.decode() for k, v in (headers or []) if k.startswith(HEADER_PREFIX) and v is not None
    }


class DeadLetterSender:
    """Sends a batch's dead letters and returns only when every one is acknowledged.

    Raises :class:`DeliveryError` (one line) when one cannot be delivered, whatever the
    cause: the consumer then stops without committing the batch, so nothing is lost.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, group: str, *, timeout_s: float = 150.0) -> None:
        config: dict[str, object] = {**kafka.client_config("consumer"), **PRODUCER_CONFIG}
        config["error_cb"] = self._on_error
        self._producer = Producer(config)
        self.topic = topic
        self.group = group
        self.timeout_s = timeout_s
        self.truncated = 0

    def _on_error(self, err: KafkaError) -> None:
        log.warning("kafka dead-letter producer: %s", err.str())

    def send(self, letters: Sequence[DeadLetter]) -> None:
        failed_at = dt.datetime.now(dt.UTC)
        too_large: list[DeadLetter] = []
        failures: dict[str, int] = {}

        def on_delivery(letter: DeadLetter, last_try: bool) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, _msg: Message) -> None:
                if err is None:
                    return
                if err.code() in _TOO_LARGE and not last_try:
                    too_large.append(letter)
                else:
                    failures[err.name()] = failures.get(err.name(), 0) + 1

            return report

        def produce(letter: DeadLetter, last_try: bool) -> None:
            key, value, headers = letter.record(
                failed_at, self.group, **({"limit": 0, "prefix": LAST_RESORT_PREFIX_BYTES} if last_try else {})
            )
            self.truncated += len(value) < len(letter.value)
            while True:
                try:
                    self._producer.produce(
                        self.topic, value, key, headers=list(headers), on_delivery=on_delivery(letter, last_try)
                    )
                    return
                except BufferError:
                    self._producer.poll(0.05)
                except KafkaException as exc:
                    err = exc.args[0]
                    if err.code() in _TOO_LARGE and not last_try:
                        last_try = True
                        key, value, headers = letter.record(
                            failed_at, self.group, limit=0, prefix=LAST_RESORT_PREFIX_BYTES
                        )
                        continue
                    failures[err.name()] = failures.get(err.name(), 0) + 1
                    return

        for letter in letters:
            produce(letter, last_try=False)
        self._flush()
        if too_large:
            log.warning(
                "%d dead letter(s) refused as too large by the broker: sending %d-byte prefixes",
                len(too_large),
                LAST_RESORT_PREFIX_BYTES,
            )
            for letter in too_large:
                produce(letter, last_try=True)
            self._flush()
        pending = len(self._producer)
        if failures or pending:
            causes = ", ".join(f"{n} x {name}" for name, n in sorted(failures.items()))
            if pending:
                causes = ", ".join(filter(None, [causes, f"{pending} unacknowledged after {self.timeout_s:.0f} s"]))
            raise DeliveryError(
                f"cannot deliver dead letters to {self.topic} ({causes}); the batch is not committed and "
                "will be read again after a restart"
            )

    def _flush(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while len(self._producer) > 0 and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))

    def close(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self._producer) > 0 and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
