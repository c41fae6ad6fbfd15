"""A Kafka producer that accounts for every message.

librdkafka retries transient failures itself (the idempotent producer keeps order and
avoids duplicates while it does); whatever still fails after ``delivery.timeout.ms``
comes back as an error delivery report, is counted and reported, never dropped
silently. Only failures are reported (``delivery.report.only.error``): a Python
callback per successful message would be a large share of the producer's time (see
docs/decisions.md), and once
``flush_all`` has emptied the queue every message without an error report has been
acknowledged by the broker, so ``delivered = sent - failed`` exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from confluent_kafka import KafkaError, Message, Producer

from pipeline.config.settings import KafkaRole, KafkaSettings
from pipeline.simulation.dump import format_dump_line

log = logging.getLogger(__name__)


class _KeyValue(Protocol):
    @property
    def key(self) -> bytes: ...

    @property
    def value(self) -> bytes: ...


PRODUCER_DEFAULTS: Mapping[str, object] = {
    "enable.idempotence": True,
    "acks": "all",
    # lz4, zstd and none measured with benchmarks/bench_produce.py: docs/decisions.md, 2026-12-01.
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "delivery.timeout.ms": 120_000,
    "delivery.report.only.error": True,
    "log_level": 3,
}


@dataclass
class DeliveryStats:
    delivered: int = 0
    """Messages acknowledged by the broker: known once the queue is empty (see ``TrackedProducer``)."""
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failed += 1
            name = err.name()
            self.errors[name] = self.errors.get(name, 0) + 1


class TrackedProducer:
    """Wraps ``confluent_kafka.Producer``: back-pressure on a full queue, counted deliveries."""

    def __init__(self, kafka: KafkaSettings, role: KafkaRole, overrides: Mapping[str, object] | None = None) -> None:
        config: dict[str, object] = {**kafka.client_config(role), **PRODUCER_DEFAULTS, **(overrides or {})}
        config["error_cb"] = self._on_error
        self.stats = DeliveryStats()
        # The delivery callback of every message, set once: passing it to each produce()
        # call as a keyword costs the hot path a keyword dict per message.
        config["on_delivery"] = self.stats.on_delivery
        self._producer = Producer(config)
        self.sent = 0

    def _on_error(self, err: KafkaError) -> None:
        # Broker-down and similar errors are transient: librdkafka keeps retrying; say so once per kind.
        log.warning("kafka producer: %s", err.str())

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, str | bytes | None]] | None = None
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self.sent += 1

    def send_all(
        self,
        topic: str,
        batches: Iterable[Sequence[_KeyValue]],
        *,
        dump: IO[bytes] | None = None,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        """The hot path of ``pipeline produce``: every message keyed, counted and optionally dumped.

        Written for speed, because generation and sending share one Python thread (the
        target is 150,000 events/s): bound methods, positional arguments, and per batch
        rather than per message the count, a ``poll`` and ``on_batch``. ``sent`` is exact after every
        batch, so progress is too, however slowly a live stream's batches come.
        """
        produce = self._producer.produce
        poll = self._producer.poll
        for batch in batches:
            for msg in batch:
                try:
                    produce(topic, msg.value, msg.key)
                except BufferError:
                    while True:
                        poll(0.05)
                        try:
                            produce(topic, msg.value, msg.key)
                            break
                        except BufferError:
                            continue
            if dump is not None:
                dump.write(b"".join([format_dump_line(msg) for msg in batch]))  # type: ignore[arg-type]
            self.sent += len(batch)
            poll(0)
            if on_batch is not None:
                on_batch()

    def poll(self, timeout: float = 0.0) -> int:
        return self._producer.poll(timeout)

    def flush_all(self, timeout: float = 180.0) -> DeliveryStats:
        """Wait until librdkafka's queue is empty (or the timeout passes); then every message is settled."""
        deadline = time.monotonic() + timeout
        while len(self._producer) > 0 and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        self.stats.delivered = self.sent - self.stats.failed - len(self._producer)
        return self.stats

    @property
    def pending(self) -> int:
        """Messages still in librdkafka's queue: neither acknowledged nor failed yet."""
        return len(self._producer)
