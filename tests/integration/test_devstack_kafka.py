"""Kafka on the local stack: TLS with client certificates, and ACLs that hold."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from pipeline.config.settings import Settings
from tests.support.kafka_topics import IsolatedTopics


def _deliver(producer: Producer, topic: str, key: bytes, value: bytes) -> list[int | None]:
    """Produce one message and return the delivery error codes (None for success)."""
    errors: list[int | None] = []
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: errors.append(err and err.code()))
    assert producer.flush(30) == 0
    return errors


def test_producer_and_consumer_certificates_round_trip_a_message(
    settings: Settings, isolated_topics: IsolatedTopics
) -> None:
    value = f"hello-{uuid.uuid4()}".encode()
    producer = Producer(settings.kafka.client_config("producer") | {"enable.idempotence": True, "acks": "all"})
    assert _deliver(producer, isolated_topics.events, b"user-1", value) == [None]

    consumer = Consumer(
        settings.kafka.client_config("consumer")
        | {"group.id": isolated_topics.group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([isolated_topics.events])
    try:
        received = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received = msg
            break
        assert received is not None, "the message never arrived"
        assert received.key() == b"user-1"
        assert received.value() == value
        consumer.commit(message=received, asynchronous=False)
    finally:
        consumer.close()


def test_consumer_may_write_dead_letters(settings: Settings, isolated_topics: IsolatedTopics) -> None:
    producer = Producer(settings.kafka.client_config("consumer"))
    assert _deliver(producer, isolated_topics.dead_letter, b"k", b"bad") == [None]


def test_consumer_certificate_cannot_write_the_events_topic(settings: Settings) -> None:
    producer = Producer(settings.kafka.client_config("consumer") | {"message.timeout.ms": 10000})
    errors = _deliver(producer, settings.kafka.events_topic, b"k", b"forged")
    assert errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_producer_certificate_cannot_read_the_events_topic(settings: Settings) -> None:
    consumer = Consumer(
        settings.kafka.client_config("producer")
        | {"group.id": settings.kafka.consumer_group, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.kafka.events_topic])
    try:
        error = None
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is not None:
                error = msg.error()
                break
        assert error is not None, "the producer principal was allowed to consume"
        assert error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)
    finally:
        consumer.close()


def test_producer_certificate_cannot_write_the_dead_letter_topic(settings: Settings) -> None:
    producer = Producer(settings.kafka.client_config("producer") | {"message.timeout.ms": 10000})
    errors = _deliver(producer, settings.kafka.dead_letter_topic, b"k", b"x")
    assert errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_service_users_cannot_administer_topics(settings: Settings, role: str) -> None:
    admin = AdminClient(settings.kafka.client_config(role))  # type: ignore[arg-type]
    futures = admin.delete_topics([settings.kafka.events_topic], operation_timeout=10)
    with pytest.raises(KafkaException) as excinfo:
        futures[settings.kafka.events_topic].result()
    assert excinfo.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_client_without_certificate_is_refused(settings: Settings) -> None:
    with_cert = settings.kafka.client_config("admin")
    AdminClient(with_cert).list_topics(timeout=10)  # control: the same client with its certificate gets in

    errors: list[KafkaError] = []
    without_cert = {k: v for k, v in with_cert.items() if k not in ("ssl.certificate.pem", "ssl.key.pem")}
    admin = AdminClient(without_cert | {"error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(1)
    assert errors, "no connection error was reported for a client without a certificate"
    assert all(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) for e in errors)
    assert any("certificate" in e.str() for e in errors)


def test_events_topic_has_six_partitions(settings: Settings) -> None:
    admin = AdminClient(settings.kafka.client_config("admin"))
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[settings.kafka.events_topic].partitions) == 6
    assert settings.kafka.dead_letter_topic in topics
