"""Which group protocol settings a consumer gets, and what makes it fall back to the classic protocol."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer, KafkaError

from pipeline.kafka.consumer import CLASSIC_ONLY, group_config, unsupported_protocol
from tests.unit.kafka.fake_consumer import KAFKA


def test_the_consumer_protocol_gets_no_classic_only_setting_and_librdkafka_accepts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        config = group_config(KAFKA, "g", "consumer", {"session.timeout.ms": 6000, "fetch.wait.max.ms": 50})
    assert config["group.protocol"] == "consumer" and not CLASSIC_ONLY & set(config)
    assert config["fetch.wait.max.ms"] == 50
    assert "session.timeout.ms apply to the classic group protocol only" in caplog.text
    Consumer({k: v for k, v in config.items() if not k.startswith("ssl.") and k != "security.protocol"}).close()


def test_the_classic_protocol_keeps_its_client_side_settings() -> None:
    config = group_config(KAFKA, "g", "classic", {"session.timeout.ms": 6000})
    assert (config["group.protocol"], config["session.timeout.ms"]) == ("classic", 6000)
    assert config["partition.assignment.strategy"] == "cooperative-sticky"


def test_only_the_heartbeat_api_missing_means_fall_back() -> None:
    missing = KafkaError(
        KafkaError._FATAL,
        "Fatal error: Broker: API version not supported: ConsumerGroupHeartbeat "
        "fatal error: Broker: API version not supported",
    )
    assert unsupported_protocol(missing)
    assert not unsupported_protocol(KafkaError(KafkaError._FATAL, "Fatal error: Broker: Fenced instance id"))
    assert not unsupported_protocol(KafkaError(KafkaError.UNSUPPORTED_VERSION, "ConsumerGroupHeartbeat"))
