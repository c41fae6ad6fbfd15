"""Apache Kafka in KRaft mode from the jars on Maven Central, SSL with required client certificates.

As on Aiven, every listener (the controller's too) speaks TLS and every client proves
who it is with a certificate signed by the stack CA. The StandardAuthorizer denies
whatever no ACL allows; the broker and ``avnadmin`` are super users; the producer and
the consumer get only what the pipeline needs.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from devstack import certs, proc
from devstack.errors import DevstackError
from devstack.layout import KAFKA_VERSION, REPO_ROOT, Layout
from pipeline.contract import names

HOST = "127.0.0.1"
BROKER_PRINCIPAL = "kafka-broker"
"""The broker's own certificate CN (inter-broker and controller traffic); a super user."""
DEAD_LETTER_PARTITIONS = 3
PROXIED_LISTENER = "PROXIED"
POM = REPO_ROOT / "devstack" / "maven" / "kafka-pom.xml"


def libs_dir(layout: Layout) -> Path:
    return layout.dist_dir / f"kafka-{KAFKA_VERSION}" / "libs"


def install(layout: Layout) -> None:
    """Resolve the broker's jars with Maven (cached in ~/.m2) into one lib directory."""
    target = libs_dir(layout)
    if (target / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return
    mvn = proc.require_tool("mvn", "install Maven (sudo apt-get install maven)")
    tmp = target.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-Dkafka.version={KAFKA_VERSION}",
            f"-DoutputDirectory={tmp}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DevstackError("fetching Kafka jars with Maven failed: " + (result.stdout + result.stderr).strip()[-500:])
    tmp.replace(target)


def _service_dir(layout: Layout) -> Path:
    return layout.service_dir("kafka")


def _pid_file(layout: Layout) -> Path:
    return _service_dir(layout) / "kafka.pid"


def _log_file(layout: Layout) -> Path:
    return _service_dir(layout) / "kafka.log"


def client_pairs(layout: Layout, ca: certs.CertPair) -> dict[str, certs.CertPair]:
    """Client certificates, one per principal, named by the principal (the certificate CN)."""
    return {
        principal: certs.ensure_leaf(layout.certs_dir, ca, f"kafka-{principal}", common_name=principal)
        for principal in (names.ADMIN_PRINCIPAL, names.PRODUCER_PRINCIPAL, names.CONSUMER_PRINCIPAL)
    }


def client_config(layout: Layout, pair: certs.CertPair) -> dict[str, str]:
    return {
        "bootstrap.servers": f"{HOST}:{layout.kafka_port}",
        "security.protocol": "SSL",
        "ssl.ca.pem": (layout.certs_dir / "ca.pem").read_text(),
        "ssl.certificate.pem": pair.cert_pem(),
        "ssl.key.pem": pair.key_pem(),
    }


def _write_config(layout: Layout, ca: certs.CertPair) -> Path:
    service_dir = _service_dir(layout)
    broker = certs.ensure_leaf(
        layout.certs_dir,
        ca,
        "kafka-broker",
        common_name=BROKER_PRINCIPAL,
        server_names=("localhost",),
        server_ips=(HOST,),
        client=True,
    )
    keystore = service_dir / "broker-keystore.pem"
    keystore.write_text(broker.key_pem() + broker.cert_pem())
    keystore.chmod(0o600)
    shutil.copy(ca.cert, service_dir / "ca.pem")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{layout.kafka_controller_port}",
        # PROXIED is the same SSL listener again, advertising the port a benchmark's delay
        # proxy listens on (benchmarks/latency/): a client must keep talking through the
        # proxy after the metadata answer. Clients of the SSL listener never learn of it.
        "listeners": (
            f"SSL://{HOST}:{layout.kafka_port},{PROXIED_LISTENER}://{HOST}:{layout.kafka_proxied_port},"
            f"CONTROLLER://{HOST}:{layout.kafka_controller_port}"
        ),
        "advertised.listeners": (
            f"SSL://{HOST}:{layout.kafka_port},{PROXIED_LISTENER}://{HOST}:{layout.kafka_proxy_port}"
        ),
        "listener.security.protocol.map": f"SSL:SSL,{PROXIED_LISTENER}:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SSL",
        "controller.listener.names": "CONTROLLER",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(service_dir / "ca.pem"),
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{BROKER_PRINCIPAL};User:{names.ADMIN_PRINCIPAL}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(service_dir / "data"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Lower bounds only (defaults unchanged, as on Aiven): they let a test group choose a
        # short KIP-848 session timeout, so a SIGKILLed member's partitions move in seconds.
        "group.consumer.min.session.timeout.ms": "6000",
        "group.consumer.min.heartbeat.interval.ms": "1000",
        "log.retention.hours": "168",
        "message.max.bytes": "1048588",
    }
    path = service_dir / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (service_dir / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.console.type = Console\n"
        "appender.console.name = STDOUT\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.stdout.ref = STDOUT\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
        "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
    )
    return path


def _java(layout: Layout, heap: str) -> list[str]:
    return [
        str(layout.java_home / "bin" / "java"),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={_service_dir(layout) / 'log4j2.properties'}",
        "-cp",
        str(libs_dir(layout)) + "/*",
    ]


def _format(layout: Layout, config: Path) -> None:
    data = _service_dir(layout) / "data"
    if (data / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # --cluster-id=ID rather than -t ID: a random ID may start with "-" and be read as an option.
    proc.run(
        layout,
        [*_java(layout, "256m"), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)],
        what="formatting Kafka storage",
    )


def pid(layout: Layout) -> int | None:
    """The service's process id while it runs."""
    return proc.read_pid(_pid_file(layout))


def is_running(layout: Layout) -> bool:
    return pid(layout) is not None


def _admin(layout: Layout, ca: certs.CertPair) -> AdminClient:
    return AdminClient(client_config(layout, client_pairs(layout, ca)[names.ADMIN_PRINCIPAL]) | {"log_level": "0"})


def _answers(admin: AdminClient) -> bool:
    try:
        admin.list_topics(timeout=2)
        return True
    except KafkaException:
        return False


def up(layout: Layout, ca: certs.CertPair) -> None:
    install(layout)
    service_dir = _service_dir(layout)
    service_dir.mkdir(parents=True, exist_ok=True)
    client_pairs(layout, ca)
    if not is_running(layout):
        config = _write_config(layout, ca)
        proc.own(layout, service_dir)
        _format(layout, config)
        proc.spawn(
            layout,
            [*_java(layout, layout.kafka_heap), "kafka.Kafka", str(config)],
            log_file=_log_file(layout),
            pid_file=_pid_file(layout),
        )
    admin = _admin(layout, ca)
    proc.wait_until(
        lambda: _answers(admin),
        what="Kafka",
        timeout=120,
        alive=lambda: is_running(layout),
        log_file=_log_file(layout),
    )
    _ensure_topics(admin)
    ensure_acls(admin)


def _ensure_topics(admin: AdminClient) -> None:
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(names.EVENTS_TOPIC, names.EVENTS_PARTITIONS, 1, config={"min.insync.replicas": "1"}),
        NewTopic(names.DEAD_LETTER_TOPIC, DEAD_LETTER_PARTITIONS, 1, config={"min.insync.replicas": "1"}),
    ]
    missing = [t for t in wanted if t.topic not in existing]
    if missing:
        for topic, future in admin.create_topics(missing, operation_timeout=30).items():
            try:
                future.result()
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise DevstackError(f"creating Kafka topic {topic} failed: {exc}") from exc
    wait_for_topics(admin, [t.topic for t in wanted])


def acl_bindings(
    events_topic: str = names.EVENTS_TOPIC,
    dead_letter_topic: str = names.DEAD_LETTER_TOPIC,
    group: str = names.CONSUMER_GROUP,
) -> list[AclBinding]:
    """Least privilege: the producer writes events; the consumer reads them and writes dead letters.

    Tests call this with their own topic names to give isolated topics the same rights.
    """

    def allow(
        principal: str,
        rtype: ResourceType,
        name: str,
        op: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    ) -> AclBinding:
        return AclBinding(rtype, name, pattern, f"User:{principal}", "*", op, AclPermissionType.ALLOW)

    producer, consumer = names.PRODUCER_PRINCIPAL, names.CONSUMER_PRINCIPAL
    topic = ResourceType.TOPIC
    return [
        allow(producer, topic, events_topic, AclOperation.WRITE),
        allow(producer, topic, events_topic, AclOperation.DESCRIBE),
        allow(consumer, topic, events_topic, AclOperation.READ),
        allow(consumer, topic, events_topic, AclOperation.DESCRIBE),
        allow(consumer, topic, dead_letter_topic, AclOperation.WRITE),
        allow(consumer, topic, dead_letter_topic, AclOperation.DESCRIBE),
        # The group id is a prefix so tests and benchmarks can run isolated groups
        # (clickstream-sessionizer-*) without widening the consumer's rights.
        allow(consumer, ResourceType.GROUP, group, AclOperation.READ, ResourcePatternType.PREFIXED),
        allow(consumer, ResourceType.GROUP, group, AclOperation.DESCRIBE, ResourcePatternType.PREFIXED),
    ]


def ensure_acls(admin: AdminClient, bindings: list[AclBinding] | None = None) -> None:
    """Create ACLs and wait until the broker's authorizer enforces them.

    The controller commits ACLs before the broker applies them, so without the wait a
    client that connects right away can still be refused.
    """
    wanted = bindings or acl_bindings()
    for binding, future in admin.create_acls(wanted, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            raise DevstackError(f"creating Kafka ACL {binding} failed: {exc}") from exc

    def applied() -> bool:
        described = set(admin.describe_acls(_match_all(), request_timeout=10).result())
        return all(b in described for b in wanted)

    proc.wait_until(applied, what="Kafka ACLs", timeout=30)


def wait_for_topics(admin: AdminClient, topics: list[str]) -> None:
    """Wait until every partition of the topics has a leader the broker serves."""

    def ready() -> bool:
        meta = admin.list_topics(timeout=10).topics
        return all(
            t in meta
            and meta[t].error is None
            and meta[t].partitions
            and all(p.leader >= 0 for p in meta[t].partitions.values())
            for t in topics
        )

    proc.wait_until(ready, what=f"Kafka topics {', '.join(topics)}", timeout=30)


def _match_all() -> AclBindingFilter:
    return AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )


def down(layout: Layout) -> None:
    proc.stop_pid(_pid_file(layout), name="Kafka", timeout=60)


def status(layout: Layout) -> str:
    return f"running on {HOST}:{layout.kafka_port} (SSL, client certificates)" if is_running(layout) else "stopped"
