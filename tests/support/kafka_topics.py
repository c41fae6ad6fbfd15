"""Per-test Kafka topics that carry exactly the production ACLs, created with the admin certificate."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AclBinding, AclBindingFilter, AdminClient, NewTopic

from devstack.kafka import acl_bindings, ensure_acls, wait_for_topics
from pipeline.config.settings import Settings


@dataclass(frozen=True)
class IsolatedTopics:
    events: str
    dead_letter: str
    group: str


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.client_config("admin"))


def create_isolated_topics(settings: Settings, *, suffix: str, partitions: int = 6) -> IsolatedTopics:
    topics = IsolatedTopics(
        events=f"{settings.kafka.events_topic}-t{suffix}",
        dead_letter=f"{settings.kafka.dead_letter_topic}-t{suffix}",
        group=f"{settings.kafka.consumer_group}-t{suffix}",
    )
    admin = admin_client(settings)
    futures = admin.create_topics(
        [NewTopic(topics.events, partitions, 1), NewTopic(topics.dead_letter, 1, 1)], operation_timeout=30
    )
    for future in futures.values():
        future.result()
    wait_for_topics(admin, [topics.events, topics.dead_letter])
    ensure_acls(admin, acl_bindings(topics.events, topics.dead_letter, topics.group))
    return topics


def delete_topics(settings: Settings, topics: IsolatedTopics) -> None:
    """Remove the topics and the ACLs that were made for them."""
    admin = admin_client(settings)
    for future in admin.delete_topics([topics.events, topics.dead_letter], operation_timeout=30).values():
        future.result()
    bindings = acl_bindings(topics.events, topics.dead_letter, topics.group)
    for future in admin.delete_acls([_as_filter(b) for b in bindings], request_timeout=30).values():
        future.result()


def _as_filter(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def read_all(settings: Settings, topic: str, *, timeout: float = 60.0) -> list[Message]:
    """Every message in the topic now, read with the admin certificate (no group, no commit)."""
    consumer = Consumer(
        settings.kafka.client_config("admin")
        | {
            "group.id": "inspector",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        wanted = {p: high for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        done: set[int] = set()
        while len(done) < len(wanted):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(out)} messages of {topic}, partitions {sorted(done)} complete")
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    continue
                out.append(msg)
                if msg.offset() + 1 >= wanted[msg.partition()]:
                    done.add(msg.partition())
        return out
    finally:
        consumer.close()
