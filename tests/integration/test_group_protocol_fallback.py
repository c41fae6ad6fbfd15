"""A broker without the consumer group protocol (KIP-848): the consumer falls back to the classic one.

The local stack's Kafka offers KIP-848, so this starts a second, throw-away broker from the
same jars with only the classic protocol enabled (as a Kafka 3.x broker would be), plain
text on free ports, and reads from it with the pipeline's own group consumer.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.kafka import libs_dir
from devstack.layout import load_layout
from pipeline.config.secret import Secret
from pipeline.config.settings import KafkaSettings
from pipeline.kafka.consumer import GroupConsumer


@dataclasses.dataclass(frozen=True)
class PlainKafka(KafkaSettings):
    def client_config(self, role: str) -> dict[str, str]:  # type: ignore[override]
        return {"bootstrap.servers": self.bootstrap}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def classic_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    layout = load_layout()
    home = tmp_path_factory.mktemp("classic-kafka")
    port, controller = _free_port(), _free_port()
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(home / "data"),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.coordinator.rebalance.protocols": "classic",  # what a broker without KIP-848 offers
    }
    config = home / "server.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    java = [str(layout.java_home / "bin" / "java"), "-Xmx256m", "-cp", f"{libs_dir(layout)}/*"]
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster}", "-c", str(config)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with open(home / "kafka.log", "wb") as log:
        broker = subprocess.Popen([*java, "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
        deadline = time.monotonic() + 120
        while True:
            try:
                admin.list_topics(timeout=2)
                break
            except KafkaException:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise AssertionError((home / "kafka.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        broker.wait(60)


def _settings(bootstrap: str, topic: str) -> PlainKafka:
    return PlainKafka(
        bootstrap=bootstrap,
        ca_pem="",
        certs={"consumer": ("", Secret(""))},  # type: ignore[dict-item]
        events_topic=topic,
        dead_letter_topic="unused",
        consumer_group="g",
    )


def _topic_with_messages(bootstrap: str, n: int) -> str:
    topic = f"fallback-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(30) == 0
    return topic


def test_auto_falls_back_to_the_classic_protocol_and_consumes(
    classic_broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = _topic_with_messages(classic_broker, 20)
    with caplog.at_level(logging.INFO, logger="pipeline.kafka.consumer"):
        consumer = GroupConsumer(_settings(classic_broker, topic), topic=topic, group=f"g-{topic}")
        try:
            got: list[bytes] = []
            deadline = time.monotonic() + 60
            while len(got) < 20 and time.monotonic() < deadline:
                got.extend(m.value() for m in consumer.poll_batch(100, 0.5))
            assert sorted(got) == sorted(f"m{i}".encode() for i in range(20))
            assert consumer.protocol == "classic"
        finally:
            consumer.close()
    assert "does not offer the consumer group protocol (KIP-848): using the classic protocol" in caplog.text


def test_asking_for_kip_848_there_is_a_clear_fatal_error(classic_broker: str) -> None:
    topic = _topic_with_messages(classic_broker, 1)
    consumer = GroupConsumer(_settings(classic_broker, topic), topic=topic, group=f"g-{topic}", protocol="consumer")
    try:
        with pytest.raises(KafkaException, match="ConsumerGroupHeartbeat"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                consumer.poll_batch(10, 0.5)
    finally:
        consumer.close()
