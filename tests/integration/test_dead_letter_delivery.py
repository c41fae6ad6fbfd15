"""Dead letters against the real broker: never refused for size, and any other failure is one clear error."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from pipeline.config.settings import Settings
from pipeline.errors import DeliveryError
from pipeline.kafka.dead_letters import (
    LAST_RESORT_PREFIX_BYTES,
    PREFIX_BYTES,
    DeadLetter,
    DeadLetterSender,
    parse_headers,
)
from tests.support.kafka_topics import IsolatedTopics, read_all

BROKER_LIMIT = 1_048_588
"""The local broker's (and Kafka's default) ``message.max.bytes``."""


def letter(value: bytes, offset: int, key: bytes | None = b"u-1") -> DeadLetter:
    return DeadLetter(
        key=key,
        value=value,
        reason="not_json",
        field=None,
        detail="expected JSON",
        source_topic="events",
        source_partition=2,
        source_offset=offset,
        source_timestamp_ms=None,
    )


def by_offset(messages: list[Message]) -> dict[int, Message]:
    return {int(parse_headers(m.headers())["source.offset"]): m for m in messages}


def test_letters_up_to_the_broker_limit_are_delivered_whole_or_as_a_marked_prefix(
    settings: Settings, isolated_topics: IsolatedTopics
) -> None:
    near_limit = b"x" * (BROKER_LIMIT - 200)  # what an ordinary client may put on the events topic
    huge_key = b"k" * (BROKER_LIMIT - 200)
    sender = DeadLetterSender(settings.kafka, isolated_topics.dead_letter, isolated_topics.group)
    try:
        sender.send([letter(b"small", 1), letter(near_limit, 2), letter(b"{}", 3, key=huge_key)])
    finally:
        sender.close()
    got = by_offset(read_all(settings, isolated_topics.dead_letter))
    assert set(got) == {1, 2, 3}
    assert got[1].value() == b"small" and "truncated" not in parse_headers(got[1].headers())
    headers = parse_headers(got[2].headers())
    assert got[2].value() == near_limit[:PREFIX_BYTES]
    assert (headers["truncated"], headers["original_size"]) == ("true", str(len(near_limit)))
    headers = parse_headers(got[3].headers())
    assert got[3].value() == b"{}" and headers["original_key_size"] == str(len(huge_key))


def test_a_topic_with_a_smaller_limit_still_gets_every_letter(
    settings: Settings, isolated_topics: IsolatedTopics
) -> None:
    admin = AdminClient(settings.kafka.client_config("admin"))
    limit = ConfigResource(
        ResourceType.TOPIC,
        isolated_topics.dead_letter,
        incremental_configs=[ConfigEntry("max.message.bytes", "20000", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([limit]).values():
        future.result()
    noise = random.Random(7).randbytes(300_000)  # incompressible: the broker's limit applies after compression
    sender = DeadLetterSender(settings.kafka, isolated_topics.dead_letter, isolated_topics.group)
    try:
        sender.send([letter(noise, 7), letter(b"fits", 8)])
    finally:
        sender.close()
    got = by_offset(read_all(settings, isolated_topics.dead_letter))
    assert got[7].value() == noise[:LAST_RESORT_PREFIX_BYTES]
    assert parse_headers(got[7].headers())["original_size"] == "300000"
    assert got[8].value() == b"fits"


def test_a_letter_that_cannot_be_delivered_is_one_line_naming_the_cause(settings: Settings) -> None:
    sender = DeadLetterSender(settings.kafka, settings.kafka.events_topic, "g", timeout_s=60)  # no write right there
    try:
        with pytest.raises(DeliveryError) as caught:
            sender.send([letter(b"x", 1)])
    finally:
        sender.close(timeout_s=1)
    text = str(caught.value)
    assert "TOPIC_AUTHORIZATION_FAILED" in text and "\n" not in text and DeliveryError.exit_code == 4
