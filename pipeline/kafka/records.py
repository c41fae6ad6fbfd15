"""What the pipeline reads of a Kafka message, typed.

confluent-kafka types a message's topic, partition and offset as optional because a
message that carries an error may lack them; a data message handed out by ``consume``
always has all three. :func:`coordinates` states that once, so code after the error
check works with plain values.
"""

from __future__ import annotations

from confluent_kafka import Message


def coordinates(msg: Message) -> tuple[str, int, int]:
    """``(topic, partition, offset)`` of a data message; ValueError for one without them."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a Kafka message without topic, partition or offset (an error event?)")
    return topic, partition, offset
