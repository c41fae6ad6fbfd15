"""Private Kafka topics that carry exactly the production ACLs, and reading a topic back whole.

The topics are made with the admin certificate; the producer and consumer certificates
are used unchanged against them, so authorisation works (and costs) what it does in
production. ACLs name the world's group as a prefix, so every group whose name starts
with it (a test's one group, a benchmark's many) is allowed, and no other.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AclBinding, AclBindingFilter, AdminClient, NewTopic

from devstack.kafka import acl_bindings, ensure_acls, wait_for_topics
from pipeline.config.settings import Settings
from tests.support.kafka_offsets import admin_client, position, watermarks

DEFAULT_PARTITIONS = 6
"""The local stack's events topic has 6 partitions; a private one mirrors it unless told otherwise."""


@dataclass(frozen=True)
class IsolatedTopics:
    events: str
    dead_letter: str
    group: str
    """The consumer group prefix the ACLs grant (and a test's one group)."""
    partitions: int = DEFAULT_PARTITIONS


def topic_names(settings: Settings, run_id: str, partitions: int = DEFAULT_PARTITIONS) -> IsolatedTopics:
    """The stack's topic and group names with ``-<run_id>`` appended."""
    return IsolatedTopics(
        events=f"{settings.kafka.events_topic}-{run_id}",
        dead_letter=f"{settings.kafka.dead_letter_topic}-{run_id}",
        group=f"{settings.kafka.consumer_group}-{run_id}",
        partitions=partitions,
    )


def production_partitions(settings: Settings) -> int:
    """Partitions of the stack's own events topic (6 when it cannot be read), so batch shapes are the real ones."""
    topic = settings.kafka.events_topic
    meta = admin_client(settings).list_topics(topic, timeout=10).topics.get(topic)
    return len(meta.partitions) if meta is not None and meta.error is None and meta.partitions else DEFAULT_PARTITIONS


@contextmanager
def isolated_topics(
    settings: Settings, run_id: str, *, partitions: int = DEFAULT_PARTITIONS
) -> Iterator[IsolatedTopics]:
    """Create the topics and their ACLs; on exit remove the ACLs, then the topics (even if that failed)."""
    topics = topic_names(settings, run_id, partitions)
    admin = admin_client(settings)
    futures = admin.create_topics(
        [NewTopic(topics.events, partitions, 1), NewTopic(topics.dead_letter, 1, 1)], operation_timeout=30
    )
    try:
        for future in futures.values():
            future.result()
    except BaseException:
        _delete_topics(admin, [topics.events, topics.dead_letter], missing_ok=True)  # one may exist
        raise
    try:
        wait_for_topics(admin, [topics.events, topics.dead_letter])
        bindings = acl_bindings(topics.events, topics.dead_letter, topics.group)
        try:
            ensure_acls(admin, bindings)
            yield topics
        finally:
            _delete_acls(admin, bindings)
    finally:
        _delete_topics(admin, [topics.events, topics.dead_letter])


def _delete_topics(admin: AdminClient, names: list[str], *, missing_ok: bool = False) -> None:
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            if not (missing_ok and exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise


def _delete_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in bindings
    ]
    for future in admin.delete_acls(filters, request_timeout=30).values():
        future.result()


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
        wanted = {p: high for p, (low, high) in watermarks(consumer, topic).items() if high > low}
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
                partition, offset = position(msg)
                if offset + 1 >= wanted[partition]:
                    done.add(partition)
        return out
    finally:
        consumer.close()
