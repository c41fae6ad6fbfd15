"""Producing raw records with Kafka's own Java client, from the jars devstack already runs Kafka with.

An outside check: messages built by a test and sent by a client that is not the pipeline's
(librdkafka), with its own size limits and framing, must be handled exactly like any other.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from pathlib import Path

from devstack.kafka import libs_dir
from devstack.layout import load_layout
from devstack.secrets_store import write_private
from pipeline.config.settings import Settings

SOURCE = Path(__file__).with_name("java") / "RawProducer.java"
MAX_REQUEST_BYTES = 2_097_152
"""Above the broker's limit, so the broker, not the client, decides what is too large."""

Record = tuple[int, bytes | None, bytes]
"""(partition, key or None, value)"""


def _property(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def produce_with_java(settings: Settings, topic: str, records: Sequence[Record], workdir: Path) -> None:
    """Send ``records`` to ``topic`` with the producer certificate; fail with the client's output if any is refused."""
    layout = load_layout()
    librdkafka = settings.kafka.client_config("producer")
    config = {
        "topic": topic,
        "bootstrap.servers": librdkafka["bootstrap.servers"],
        "security.protocol": "SSL",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": librdkafka["ssl.ca.pem"],
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": librdkafka["ssl.certificate.pem"],
        "ssl.keystore.key": librdkafka["ssl.key.pem"],
        "acks": "all",
        "max.request.size": str(MAX_REQUEST_BYTES),
    }
    properties = workdir / "java-producer.properties"
    write_private(properties, "".join(f"{k}={_property(v)}\n" for k, v in config.items()))
    lines = workdir / "java-records.tsv"
    lines.write_text(
        "".join(
            f"{partition}\t{'-' if key is None else base64.b64encode(key).decode()}\t"
            f"{base64.b64encode(value).decode()}\n"
            for partition, key, value in records
        )
    )
    result = subprocess.run(
        [
            str(layout.java_home / "bin" / "java"),
            "-cp",
            f"{libs_dir(layout)}/*",
            str(SOURCE),
            str(properties),
            str(lines),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    properties.unlink()
    if result.returncode != 0 or f"sent {len(records)}" not in result.stdout:
        raise AssertionError(f"the Java producer failed ({result.returncode}): {result.stderr[-3000:]}")
