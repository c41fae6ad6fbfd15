"""Typed settings built from stack outputs, wherever those come from.

Three sources, one shape: a Pulumi stack read through the Pulumi CLI (``--stack``, see
``pipeline.config.pulumi_stack``),
a file in the ``pulumi stack output --json --show-secrets`` shape (``--outputs``), or,
with neither, the local stack's file. After loading, nothing downstream can tell which
one it was. Credentials are wrapped in :class:`Secret` from the moment they are read.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipeline.config.pulumi_stack import read_stack_outputs
from pipeline.config.secret import Secret
from pipeline.contract.outputs import Output
from pipeline.errors import ConfigError

LOCAL_OUTPUTS = Path(".devstack") / "stack-outputs.json"

KafkaRole = Literal["admin", "producer", "consumer"]


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    ca_pem: str
    certs: Mapping[KafkaRole, tuple[str, Secret]]
    events_topic: str
    dead_letter_topic: str
    consumer_group: str

    def client_config(self, role: KafkaRole) -> dict[str, str]:
        """librdkafka settings for one principal; certificates stay in memory, never on disk."""
        cert, key = self.certs[role]
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.pem": self.ca_pem,
            "ssl.certificate.pem": cert,
            "ssl.key.pem": key.reveal(),
            "ssl.endpoint.identification.algorithm": "https",
            # Names the process in the broker's logs and in the group's member list.
            "client.id": f"clickstream-pipeline-{role}",
        }


@dataclass(frozen=True)
class PostgresSettings:
    app_uri: Secret
    admin_uri: Secret
    ca_pem: str
    timescaledb: bool = False
    """Whether ``pipeline schema`` creates TimescaleDB and makes ``events`` a hypertable."""

    def conninfo(self, role: Literal["app", "admin"]) -> str:
        """A libpq URI that verifies the server against the stack CA (``sslmode=verify-full``).

        libpq reads the CA only from a file, so the (public) CA is written once to a
        private temporary directory that is removed at exit.
        """
        uri = (self.app_uri if role == "app" else self.admin_uri).reveal()
        parts = urlsplit(uri)
        query = dict(parse_qsl(parts.query))
        if self.ca_pem:
            query["sslmode"] = "verify-full"
            query["sslrootcert"] = str(_ca_file(self.ca_pem))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def database(self) -> str:
        return urlsplit(self.app_uri.reveal()).path.lstrip("/") or "postgres"


@dataclass(frozen=True)
class OpenSearchSettings:
    uri: Secret
    admin_uri: Secret
    dashboards_uri: Secret
    ca_pem: str = ""


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    postgres: PostgresSettings
    opensearch: OpenSearchSettings
    source: str

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, object], *, source: str) -> Settings:
        missing = [o.value for o in Output if o.value not in outputs]
        if missing:
            raise ConfigError(
                f"{source} lacks stack output(s) {', '.join(missing)}; "
                "re-run `pulumi up` (or `devstack up`) so every output of the contract is exported"
            )
        wrong = [o.value for o in Output if not isinstance(outputs[o.value], str)]
        if wrong:
            raise ConfigError(f"{source}: stack output(s) {', '.join(wrong)} must be strings")

        def text(o: Output) -> str:
            return str(outputs[o.value])

        def secret(o: Output) -> Secret:
            return Secret(text(o))

        for required in (Output.KAFKA_BOOTSTRAP, Output.POSTGRES_APP_URI, Output.OPENSEARCH_URI):
            if not text(required).strip():
                raise ConfigError(f"{source}: stack output {required.value} is empty")
        timescaledb = text(Output.POSTGRES_TIMESCALEDB)
        if timescaledb not in ("true", "false"):
            raise ConfigError(f"{source}: stack output {Output.POSTGRES_TIMESCALEDB.value} must be 'true' or 'false'")
        return cls(
            kafka=KafkaSettings(
                bootstrap=text(Output.KAFKA_BOOTSTRAP),
                ca_pem=text(Output.KAFKA_CA_CERT),
                certs={
                    "admin": (text(Output.KAFKA_ADMIN_CERT), secret(Output.KAFKA_ADMIN_KEY)),
                    "producer": (text(Output.KAFKA_PRODUCER_CERT), secret(Output.KAFKA_PRODUCER_KEY)),
                    "consumer": (text(Output.KAFKA_CONSUMER_CERT), secret(Output.KAFKA_CONSUMER_KEY)),
                },
                events_topic=text(Output.KAFKA_EVENTS_TOPIC),
                dead_letter_topic=text(Output.KAFKA_DEAD_LETTER_TOPIC),
                consumer_group=text(Output.KAFKA_CONSUMER_GROUP),
            ),
            postgres=PostgresSettings(
                app_uri=secret(Output.POSTGRES_APP_URI),
                admin_uri=secret(Output.POSTGRES_ADMIN_URI),
                ca_pem=text(Output.POSTGRES_CA_CERT),
                timescaledb=timescaledb == "true",
            ),
            opensearch=OpenSearchSettings(
                uri=secret(Output.OPENSEARCH_URI),
                admin_uri=secret(Output.OPENSEARCH_ADMIN_URI),
                dashboards_uri=secret(Output.OPENSEARCH_DASHBOARDS_URI),
                ca_pem=text(Output.OPENSEARCH_CA_CERT),
            ),
            source=source,
        )


def read_outputs_file(path: Path) -> dict[str, object]:
    """Parse a ``pulumi stack output --json --show-secrets`` file; errors never echo its content."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"stack-outputs file {path} not found; start the local stack with `devstack up`, "
            "or pass --outputs FILE or --stack NAME"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read stack-outputs file {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"stack-outputs file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "write it with `pulumi stack output --json --show-secrets > FILE`"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"stack-outputs file {path} must hold a JSON object of output names to values")
    return data


def find_pulumi_project(start: Path | None = None) -> Path:
    """The nearest directory (the current one or a parent) holding Pulumi.yaml."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").exists():
            return directory
    raise ConfigError(
        "--stack needs the Pulumi project: run the command inside the checkout (no Pulumi.yaml "
        f"in {here} or its parents)"
    )


def find_local_outputs(start: Path | None = None) -> Path:
    """The local stack's outputs file: in the current directory or the nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / LOCAL_OUTPUTS
        if candidate.exists():
            return candidate
    return here / LOCAL_OUTPUTS


def load_settings(
    *, outputs_file: Path | None = None, stack: str | None = None, work_dir: Path | None = None
) -> Settings:
    if outputs_file is not None and stack is not None:
        raise ConfigError("give either --outputs FILE or --stack NAME, not both")
    if stack is not None:
        project = work_dir or find_pulumi_project()
        return Settings.from_outputs(read_stack_outputs(stack, project), source=f"stack {stack!r}")
    path = outputs_file or find_local_outputs()
    return Settings.from_outputs(read_outputs_file(path), source=str(path))


_ca_files: dict[str, Path] = {}


def _ca_file(ca_pem: str) -> Path:
    if ca_pem not in _ca_files:
        directory = Path(tempfile.mkdtemp(prefix="clickstream-ca-"))
        os.chmod(directory, 0o700)
        path = directory / "ca.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ca_pem)
        atexit.register(shutil.rmtree, directory, True)
        _ca_files[ca_pem] = path
    return _ca_files[ca_pem]
