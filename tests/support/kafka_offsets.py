"""A topic's offsets and a consumer group's committed offsets, read and set from outside with the admin certificate.

Why from outside: the pipeline commits a batch's offsets only after both sinks hold it,
so "the group has committed up to the end of the topic" means "everything is written
everywhere", without asking the pipeline anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.config.settings import Settings

OFFSETS_READER_GROUP = "offsets-reader"
"""librdkafka wants a ``group.id`` even for reading watermarks; this one never joins or commits."""


def admin_client(settings: Settings) -> AdminClient:
    """A Kafka admin client with the stack's admin certificate."""
    config: dict[str, str | int | float | bool] = {**settings.kafka.client_config("admin")}
    return AdminClient(config)


def position(message: Message) -> tuple[int, int]:
    """(partition, offset) of a message read from a topic (librdkafka leaves them unset only on other messages)."""
    partition, offset = message.partition(), message.offset()
    assert partition is not None and offset is not None, "a consumed message without a position"
    return partition, offset


def watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of ``topic``."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The offset the next message of each partition will get (its high watermark)."""
    consumer = Consumer({**settings.kafka.client_config("admin"), "group.id": OFFSETS_READER_GROUP})
    try:
        return {p: high for p, (_low, high) in watermarks(consumer, topic).items()}
    finally:
        consumer.close()


def committed_offsets(admin: AdminClient, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """The group's committed offset per partition (negative where it has committed none)."""
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])]
    result = admin.list_consumer_group_offsets(request, request_timeout=10)[group].result()
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def caught_up(settings: Settings, group: str, topic: str) -> bool:
    """Has the group committed everything the topic holds now?"""
    ends = end_offsets(settings, topic)
    committed = committed_offsets(admin_client(settings), group, topic, ends)
    return all(committed.get(p, -1) >= end for p, end in ends.items())


def set_group_offsets(settings: Settings, group: str, topic: str, offsets: Mapping[int, int]) -> None:
    """Make ``offsets`` the group's committed offsets (the group must have no active member)."""
    admin = admin_client(settings)
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in offsets.items()])]
    for future in admin.alter_consumer_group_offsets(request, request_timeout=30).values():
        future.result()


def delete_groups(admin: AdminClient, groups: list[str], *, settle_s: float = 5.0) -> None:
    """Delete consumer groups; a member that is still leaving makes the broker say NON_EMPTY_GROUP
    for a moment, so that is retried for ``settle_s``. Not for the 45 s a member that vanished
    without leaving is kept: such a group is reported, and the broker removes it by itself."""
    pending = list(groups)
    deadline = time.monotonic() + settle_s
    while pending:
        retry = []
        for group, future in admin.delete_consumer_groups(pending, request_timeout=30).items():
            try:
                future.result()
            except Exception as exc:
                text = str(exc)
                if "GROUP_ID_NOT_FOUND" in text:
                    continue  # never committed anything: nothing to delete
                if "NON_EMPTY_GROUP" in text:
                    retry.append(group)
                    continue
                raise
        pending = retry
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"consumer group(s) {', '.join(pending)} still list a member that vanished without leaving "
                "(a --drain consumer that exited during a rebalance); the broker drops that member after the "
                "session timeout (45 s), and then the group, which holds no offsets since its topic was deleted, "
                "at its next offsets-retention check (<= 10 min; observed)"
            )
        if pending:
            time.sleep(1.0)
