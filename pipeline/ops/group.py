"""The consumer group as the broker sees it: members, their partitions, committed offsets and lag.

Read with Kafka's admin API (describe group, list group offsets, list topic offsets),
never by joining the group, so looking does not trigger a rebalance. Lag of a partition
is its end offset minus the group's committed offset; a partition the group has never
committed counts from its earliest offset, which is where the consumer would start
(``auto.offset.reset=earliest``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from pipeline.config.settings import KafkaRole, KafkaSettings
from pipeline.errors import ServiceError, first_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    earliest: int
    end: int
    committed: int | None
    """None when the group has never committed this partition."""

    @property
    def lag(self) -> int:
        done = self.committed if self.committed is not None else self.earliest
        return max(0, self.end - max(done, self.earliest))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lag": self.lag}


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partitions": list(self.partitions)}


@dataclass(frozen=True)
class GroupState:
    group: str
    topic: str
    state: str
    members: list[Member] = field(default_factory=list)
    partitions: list[PartitionOffsets] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "topic": self.topic,
            "state": self.state,
            "members": [m.to_dict() for m in self.members],
            "partitions": [p.to_dict() for p in self.partitions],
            "total_lag": self.total_lag,
        }


def admin_client(kafka: KafkaSettings, role: KafkaRole) -> AdminClient:
    return AdminClient(kafka.client_config(role) | {"log_level": 0})


def _failed(doing: str, exc: BaseException) -> ServiceError:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    text = err.str() if hasattr(err, "str") else str(err)
    return ServiceError(f"Kafka: {doing} failed: {first_line(text)}")


def topic_offsets(admin: AdminClient, topic: str, *, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """partition -> (earliest, end) offsets of ``topic``."""
    try:
        meta = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise ServiceError(f"Kafka topic {topic} is not visible (missing, or no Describe right on it)")
        partitions = sorted(meta.partitions)
        ends: dict[int, list[int]] = {p: [0, 0] for p in partitions}
        for index, spec in ((0, OffsetSpec.earliest()), (1, OffsetSpec.latest())):
            futures = admin.list_offsets({TopicPartition(topic, p): spec for p in partitions}, request_timeout=timeout)
            for tp, future in futures.items():
                ends[tp.partition][index] = future.result().offset
    except KafkaException as exc:
        raise _failed(f"reading the offsets of {topic}", exc) from None
    return {p: (low, high) for p, (low, high) in ends.items()}


def committed_offsets(
    admin: AdminClient, group: str, topic: str, partitions: list[int], *, timeout: float = 10.0
) -> dict[int, int | None]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    try:
        result = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result()
    except KafkaException as exc:
        raise _failed(f"reading the committed offsets of group {group}", exc) from None
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in result.topic_partitions}


def group_state(admin: AdminClient, group: str, topic: str, *, timeout: float = 10.0) -> GroupState:
    offsets = topic_offsets(admin, topic, timeout=timeout)
    committed = committed_offsets(admin, group, topic, sorted(offsets), timeout=timeout)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result()
    except KafkaException as exc:
        raise _failed(f"describing group {group}", exc) from None
    members = sorted(
        (
            Member(
                m.member_id,
                m.client_id,
                m.host,
                tuple(sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)),
            )
            for m in description.members
        ),
        key=lambda m: (m.partitions, m.member_id),
    )
    state = getattr(description.state, "name", str(description.state))
    return GroupState(
        group,
        topic,
        state,
        members,
        [PartitionOffsets(p, low, high, committed.get(p)) for p, (low, high) in sorted(offsets.items())],
    )


def group_lag(admin: AdminClient, group: str, topic: str, *, timeout: float = 10.0) -> int:
    offsets = topic_offsets(admin, topic, timeout=timeout)
    committed = committed_offsets(admin, group, topic, sorted(offsets), timeout=timeout)
    return sum(PartitionOffsets(p, low, high, committed.get(p)).lag for p, (low, high) in offsets.items())


class LagWatcher:
    """The group's total lag, refreshed by a helper thread every ``every_s``; None until first known."""

    def __init__(
        self, kafka: KafkaSettings, group: str, topic: str, *, role: KafkaRole = "consumer", every_s: float = 2.0
    ) -> None:
        self._admin = admin_client(kafka, role)
        self._group, self._topic, self._every = group, topic, every_s
        self.value: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-watcher", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        try:
            self.value = group_lag(self._admin, self._group, self._topic, timeout=5.0)
        except ServiceError as exc:
            log.debug("lag unknown: %s", exc)

    def _run(self) -> None:
        while True:
            self.refresh()
            if self._stop.wait(self._every):
                return

    def close(self) -> None:
        """Stop the helper thread and take one last reading, so a final display shows the lag at the end."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.refresh()
