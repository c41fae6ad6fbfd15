"""The Kafka side of the consumer: group membership, batches, pausing while sinks recover, commits.

Offsets are committed explicitly, and only for data already written to every sink, and
only for partitions this process still owns; after a rebalance the new
owner re-reads what was not committed and the idempotent sinks absorb the repeat. Which
offsets those are is the :class:`~pipeline.kafka.ledger.OffsetLedger`'s to say, and how to
wait out a sink outage the :class:`~pipeline.kafka.hold.HoldController`'s; this module
only speaks to the client.

Group protocol: the next-generation consumer group protocol (KIP-848,
``group.protocol=consumer``) where the broker offers it (Kafka 4.x), else the classic one.
Under the classic protocol every membership change is a group-wide rebalance: each member
must rejoin before anyone gets partitions, so one member busy with a batch (or gone
without leaving) holds every other member up, up to the session timeout. Under KIP-848
the broker assigns partitions itself and hands each member its changes on its next
heartbeat, so a member leaving or joining costs the others nothing. The session timeout
and heartbeat interval are then the group's settings on the broker
(``consumer.session.timeout.ms``, ``consumer.heartbeat.interval.ms``), not the client's.
A broker without KIP-848 answers the first heartbeat with a fatal "API version not
supported"; the consumer then starts again with the classic protocol and says so once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipeline.config.settings import KafkaSettings
from pipeline.kafka.ledger import OffsetLedger
from pipeline.kafka.records import coordinates

log = logging.getLogger(__name__)

GroupProtocol = Literal["auto", "consumer", "classic"]

CONSUMER_DEFAULTS: Mapping[str, object] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "max.poll.interval.ms": 300_000,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 100,
    "max.partition.fetch.bytes": 4_194_304,
    "queued.max.messages.kbytes": 262_144,
    "log_level": 3,
}
CLASSIC_DEFAULTS: Mapping[str, object] = {
    "group.protocol": "classic",
    "partition.assignment.strategy": "cooperative-sticky",
    "session.timeout.ms": 45_000,
}
"""Client-side group settings that only the classic protocol has."""
NEXT_GENERATION: Mapping[str, object] = {"group.protocol": "consumer"}
CLASSIC_ONLY: Final = frozenset({"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"})
COMMIT_RESEND_S: Final = 10.0
"""A commit not answered within this long is sent again (commits of the same offsets are
idempotent, and the broker refuses one from an outdated member)."""


def unsupported_protocol(err: KafkaError) -> bool:
    """Is this the answer of a broker without the consumer group protocol (KIP-848)?"""
    return err.code() == KafkaError._FATAL and "ConsumerGroupHeartbeat" in err.str()


def group_config(
    kafka: KafkaSettings, group: str, protocol: Literal["consumer", "classic"], overrides: Mapping[str, object]
) -> dict[str, object]:
    """The librdkafka configuration of a member of ``group`` speaking ``protocol``."""
    extra = dict(overrides)
    if protocol == "consumer":
        dropped = sorted(CLASSIC_ONLY & set(extra))
        if dropped:
            log.warning(
                "%s apply to the classic group protocol only; under KIP-848 they are the group's "
                "settings on the broker (consumer.session.timeout.ms, consumer.heartbeat.interval.ms)",
                ", ".join(dropped),
            )
        extra = {k: v for k, v in extra.items() if k not in CLASSIC_ONLY}
    chosen = NEXT_GENERATION if protocol == "consumer" else CLASSIC_DEFAULTS
    return {**kafka.client_config("consumer"), **CONSUMER_DEFAULTS, **chosen, "group.id": group, **extra}


class GroupConsumer:
    """A member of the pipeline's consumer group, reading one topic in batches.

    A thin layer over ``confluent_kafka.Consumer``: it turns the client's callbacks and
    errors into calls on an :class:`~pipeline.kafka.ledger.OffsetLedger`, which decides
    what may be committed, and offers the operations a
    :class:`~pipeline.kafka.hold.HoldController` needs while a sink is down.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        group: str,
        overrides: Mapping[str, object] | None = None,
        protocol: GroupProtocol = "auto",
        client: Callable[[dict[str, object]], Consumer] = Consumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.group = group
        self._kafka = kafka
        self._overrides = dict(overrides or {})
        self._fallback = protocol == "auto"
        self.protocol: Literal["consumer", "classic"] = "classic" if protocol == "classic" else "consumer"
        self.ledger = OffsetLedger()
        self._client = client
        self._paused = False
        self._clock = clock
        self._unanswered: tuple[dict[int, int], float] | None = None
        """The last commit sent and not answered yet, and when it was sent."""
        self._consumer = self._join()

    def _join(self) -> Consumer:
        log.info("joining group %s with the %s group protocol", self.group, self.protocol)
        config = group_config(self._kafka, self.group, self.protocol, self._overrides)
        config["error_cb"] = self._on_error
        config["on_commit"] = self._on_commit
        consumer = self._client(config)
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        return consumer

    def _fall_back_to_classic(self) -> None:
        log.warning("the broker does not offer the consumer group protocol (KIP-848): using the classic protocol")
        self._consumer.close()
        self._fallback = False
        self.protocol = "classic"
        self._consumer = self._join()

    # --- group membership ---------------------------------------------------------------
    def _on_error(self, err: KafkaError) -> None:
        if self._fallback and unsupported_protocol(err):
            return  # poll_batch starts again with the classic protocol
        log.warning("kafka consumer: %s", err.str())

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.ledger.assign(p.partition for p in partitions)
        if self._paused and partitions:
            self._consumer.pause(partitions)
        if partitions:
            log.info(
                "assigned partitions %s (now %s)", sorted(p.partition for p in partitions), sorted(self.ledger.owned)
            )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Last chance to commit what was written for these partitions: after this, the
        # next owner starts from the committed offset.
        revoked = {p.partition for p in partitions}
        self._commit(self.ledger.revoke(revoked))
        log.info("revoked partitions %s", sorted(revoked))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.ledger.lose(p.partition for p in partitions)
        log.warning("lost partitions %s", sorted(p.partition for p in partitions))

    # --- reading ------------------------------------------------------------------------
    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` data messages; partition EOFs dropped, real errors raised."""
        messages = self._consumer.consume(num_messages=max_messages, timeout=timeout)
        out: list[Message] = []
        for msg in messages:
            err = msg.error()
            if err is None:
                out.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif self._fallback and unsupported_protocol(err):
                self._fall_back_to_classic()
                return []
            elif err.fatal() or not err.retriable():
                raise KafkaException(err)
            else:
                log.warning("kafka consumer: %s", err.str())
        return out

    # --- held while a sink is down (see pipeline.kafka.hold) ----------------------------
    def pause_all(self) -> None:
        self._paused = True
        self._consumer.pause(self._assignment())

    def resume_all(self) -> None:
        self._paused = False
        self._consumer.resume(self._assignment())

    def poll_held(self, timeout: float) -> list[Message]:
        return [msg for msg in self._consumer.consume(num_messages=100, timeout=timeout) if msg.error() is None]

    def rewind(self, message: Message) -> None:
        tp = TopicPartition(*coordinates(message))
        self._consumer.seek(tp)
        self._consumer.pause([tp])

    def _assignment(self) -> list[TopicPartition]:
        return list(self._consumer.assignment())

    # --- committing ---------------------------------------------------------------------
    def begin_batch(self, messages: Sequence[Message]) -> int:
        """Record a batch about to be written; its number for :meth:`commit_batch`."""
        return self.ledger.read(next_offsets(messages))

    def commit_batch(self, number: int) -> bool:
        """Batch ``number`` is written everywhere: commit what may be committed now; True when nothing is left.

        Commits are asynchronous: the answer arrives in a later ``poll_batch`` (librdkafka
        serves the commit callback there), and only then does the ledger count the
        offsets as committed. A synchronous commit waits inside the client, where nothing
        can interrupt it; after a broker outage one was seen never to return. A commit
        that fails (a rebalance in progress, the coordinator unreachable) or is not
        answered within ``COMMIT_RESEND_S`` is sent again by the next ``commit_batch`` or
        ``retry_pending``, or in the revoke callback, so written data of a partition this
        process keeps is never left uncommitted (nobody would re-read it).
        """
        self.ledger.written(number)
        return self.retry_pending()

    def retry_pending(self) -> bool:
        """Commit whatever is written and not committed yet; True when nothing is left."""
        return self._commit(self.ledger.committable())

    def _commit(self, offsets: Mapping[int, int]) -> bool:
        if not offsets:
            return True
        offsets = dict(offsets)
        now = self._clock()
        if self._unanswered is not None:
            sent, at = self._unanswered
            if sent == offsets and now - at < COMMIT_RESEND_S:
                return False
        partitions = [TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())]
        try:
            self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:
            log.warning("offset commit failed, will retry: %s", exc.args[0].str())
            return False
        self._unanswered = (offsets, now)
        return False

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._unanswered = None
        if err is not None:
            log.warning("offset commit failed, will retry: %s", err.str())
            return
        for tp in partitions:
            if tp.error is not None:
                log.warning("offset commit of partition %d failed, will retry: %s", tp.partition, tp.error.str())
        self.ledger.committed({tp.partition: tp.offset for tp in partitions if tp.error is None})

    # --- progress -----------------------------------------------------------------------
    def group_lag(self, timeout: float = 10.0) -> int | None:
        """Messages of the topic not yet committed by the whole group (None if unknown now)."""
        try:
            meta = self._consumer.list_topics(self.topic, timeout=timeout).topics[self.topic]
            parts = [TopicPartition(self.topic, p) for p in meta.partitions]
            committed = self._consumer.committed(parts, timeout=timeout)
            lag = 0
            for tp in committed:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=timeout
                )
                done = tp.offset if tp.offset != OFFSET_INVALID and tp.offset >= 0 else low
                lag += max(0, high - done)
            return lag
        except KafkaException as exc:
            log.debug("lag unknown: %s", exc)
            return None

    def close(self, flush_s: float = 5.0) -> None:
        """Commit what is written (waiting up to ``flush_s`` for the answer), then leave the group.

        Leaving cleanly moves the partitions to another member at once; whatever is still
        uncommitted after ``flush_s`` is read again by the next owner.
        """
        deadline = self._clock() + flush_s
        try:
            if self.ledger.pending:
                self.pause_all()
                while not self.retry_pending() and self._clock() < deadline:
                    self._consumer.consume(num_messages=1, timeout=0.1)  # serves the commit callback
        except KafkaException as exc:
            log.warning("final offset commit failed: %s", exc.args[0].str())
        self._consumer.close()


def next_offsets(messages: Sequence[Message]) -> dict[int, int]:
    """The offset to commit per partition: one past the highest offset read."""
    out: dict[int, int] = {}
    for msg in messages:
        _, p, o = coordinates(msg)
        if o + 1 > out.get(p, -1):
            out[p] = o + 1
    return out
