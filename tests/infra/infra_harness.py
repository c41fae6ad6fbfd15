"""Run the Pulumi program in-process under Pulumi's unit-test mocks, as the CLI would.

(A uniquely named helper module rather than conftest.py, so test modules can import its
names without clashing with other folders' conftest modules.)

Why this harness instead of ``@pulumi.runtime.test`` alone: the CLI runs
``runpy.run_path("infra")`` inside ``pulumi.runtime.run_in_stack``, and only that path
registers the stack outputs with the engine. A monitor subclass records what the engine
would receive: each resource registration (type, parent, ``protect``, ``deletedWith``,
dependencies), the mocked inputs
(camelCase keys, integers as floats) and the stack outputs as serialized on the wire,
where secrets carry Pulumi's secret signature. Assertions then run on plain data after
the program has finished, so none of them can be skipped by an unresolved ``apply``.

Like the real engine, the monitor marks secret every output property a resource's SDK
class lists in ``additional_secret_outputs`` (the Aiven provider's own secrecy: Kafka
user certificates, service URIs...), so the program's exports are tested against what
the provider really returns rather than against mocks that return everything in clear.

Pulumi's runtime is process-global state (settings, root stack, config, event loop).
Each run gets a fresh event loop, mocks, monitor, config and root stack, and restores
them afterwards, the same steps ``pulumi.runtime.test`` and ``reset_options`` take.
"""

from __future__ import annotations

import asyncio
import os
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_in_stack, wait_for_rpcs

from infra.config import PlatformConfig, load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]

STACK = "dev"
PROJECT_CA = "-----BEGIN CERTIFICATE-----\nMIIEQTCCAqmgAwIBAgIUprojectCAfake\n-----END CERTIFICATE-----\n"


def pem(kind: str, owner: str) -> str:
    """A PEM-looking string naming its owner, so a test can tell whose cert was exported."""
    return f"-----BEGIN {kind}-----\nMIIfake{owner.replace('-', '')}\n-----END {kind}-----\n"


# Credentials with URL-reserved characters: a missing quote() corrupts the exported URIs.
PG_ADMIN_PASSWORD = "AVNS_adm1n/p@ss"
PG_APP_PASSWORD = "app:p@ss/w%rd?#1"
OPENSEARCH_ADMIN_PASSWORD = "AVNS_osadmin"
OPENSEARCH_PIPELINE_PASSWORD = "pipe+line@pass:word/1"
KAFKA_PORT = 12693
PG_PORT = 12691
OPENSEARCH_PORT = 12692


def service_host(inputs: dict[str, Any]) -> str:
    return f"{inputs['serviceName']}-{inputs['project']}.e.aivencloud.com"


@dataclass
class Registered:
    """One resource as the engine saw it (request) and as the provider mock saw it (inputs)."""

    type: str
    name: str
    urn: str
    parent: str
    protect: bool | None
    custom: bool
    deleted_with: str = ""
    additional_secret_outputs: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)


class AivenMocks(pulumi.runtime.Mocks):
    """Return what the Aiven provider would: hosts, ports, URIs, PEM certs, passwords."""

    def __init__(self) -> None:
        self.inputs_by_name: dict[str, dict[str, Any]] = {}
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.secret_outputs_by_name: dict[str, list[str]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs_by_name[args.name] = dict(args.inputs)
        state = dict(args.inputs)
        state.update(self._computed(args.typ, args.name, args.inputs))
        for key in self.secret_outputs_by_name.get(args.name, []):
            if key in state:
                state[key] = secret_wire(state[key])
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        # An empty failure list, not None: the mock monitor iterates it.
        self.calls.append(args)
        if args.token == "aiven:index/getProject:getProject":
            return {"project": args.args["project"], "caCert": PROJECT_CA}, []
        return {}, []

    @staticmethod
    def _computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if typ == "aiven:index/kafka:Kafka":
            host = service_host(inputs)
            return {
                "serviceHost": host,
                "servicePort": KAFKA_PORT,
                "serviceUri": f"{host}:{KAFKA_PORT}",
                "serviceUsername": "avnadmin",
                "kafkas": [
                    {
                        "accessCert": pem("CERTIFICATE", "kafka-admin"),
                        "accessKey": pem("PRIVATE KEY", "kafka-admin"),
                        "uris": [f"{host}:{KAFKA_PORT}"],
                    }
                ],
            }
        if typ == "aiven:index/pg:Pg":
            host = service_host(inputs)
            uri = f"postgres://avnadmin:{quote(PG_ADMIN_PASSWORD, safe='')}@{host}:{PG_PORT}/defaultdb?sslmode=require"
            return {
                "serviceHost": host,
                "servicePort": PG_PORT,
                "serviceUri": uri,
                "serviceUsername": "avnadmin",
                "servicePassword": PG_ADMIN_PASSWORD,
                "pg": {
                    "host": host,
                    "port": PG_PORT,
                    "user": "avnadmin",
                    "password": PG_ADMIN_PASSWORD,
                    "dbname": "defaultdb",
                    "sslmode": "require",
                    "uri": uri,
                },
            }
        if typ == "aiven:index/openSearch:OpenSearch":
            host = service_host(inputs)
            return {
                "serviceHost": host,
                "servicePort": OPENSEARCH_PORT,
                "serviceUri": f"https://avnadmin:{OPENSEARCH_ADMIN_PASSWORD}@{host}:{OPENSEARCH_PORT}",
                "serviceUsername": "avnadmin",
                "servicePassword": OPENSEARCH_ADMIN_PASSWORD,
                "opensearches": [
                    {
                        "opensearchDashboardsUri": f"https://avnadmin:{OPENSEARCH_ADMIN_PASSWORD}@{host}:443",
                        "uris": [f"https://avnadmin:{OPENSEARCH_ADMIN_PASSWORD}@{host}:{OPENSEARCH_PORT}"],
                        "username": "avnadmin",
                        "password": OPENSEARCH_ADMIN_PASSWORD,
                    }
                ],
            }
        if typ == "aiven:index/kafkaUser:KafkaUser":
            user = inputs["username"]
            return {
                "accessCert": pem("CERTIFICATE", user),
                "accessKey": pem("PRIVATE KEY", user),
                "password": f"kafka-{user}-pw",
                "type": "normal",
            }
        if typ == "aiven:index/pgUser:PgUser":
            return {"password": PG_APP_PASSWORD, "type": "normal"}
        if typ == "aiven:index/opensearchUser:OpensearchUser":
            return {"password": OPENSEARCH_PIPELINE_PASSWORD, "type": "normal"}
        if typ == "aiven:index/kafkaAcl:KafkaAcl":
            return {"aclId": f"acl-{name}"}
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock engine that also keeps what a real engine would store: registrations and outputs."""

    def __init__(self, mocks: AivenMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registered] = []
        self.resource_outputs: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        self.registrations.clear()
        self.resource_outputs.clear()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.mocks.secret_outputs_by_name[request.name] = list(request.additionalSecretOutputs)
        response = super().RegisterResource(request)
        self.registrations.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                protect=request.protect if request.HasField("protect") else None,
                custom=request.custom,
                deleted_with=request.deletedWith,
                additional_secret_outputs=list(request.additionalSecretOutputs),
                dependencies=list(request.dependencies),
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        self.resource_outputs[request.urn] = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


def secret_wire(value: Any) -> dict[str, Any]:
    """Serialize ``value`` as a secret the way the SDK puts it on the wire."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def unwrap(wire_value: Any) -> tuple[Any, bool]:
    """Return (plain value, is_secret) of one serialized output value."""
    if isinstance(wire_value, dict) and wire_value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return wire_value.get("value"), True
    return wire_value, False


@dataclass
class ProgramRun:
    """Everything one run of the program told the (mock) engine."""

    resources: list[Registered]
    stack_wire_outputs: dict[str, Any]
    calls: list[pulumi.runtime.MockCallArgs]

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == token]

    def output(self, name: str) -> Any:
        return unwrap(self.stack_wire_outputs[name])[0]

    def is_secret(self, name: str) -> bool:
        return unwrap(self.stack_wire_outputs[name])[1]


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def config_text(value: Any) -> str:
    """Render a YAML value the way the Pulumi CLI hands it to the program: as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stack_config(project_yaml: dict[str, Any], stack_yaml: dict[str, Any]) -> dict[str, str]:
    """Pulumi.yaml defaults overlaid with a stack file: the config ``pulumi up`` would pass."""
    namespace = project_yaml["name"]
    merged = {
        f"{namespace}:{key}": config_text(spec["default"])
        for key, spec in project_yaml["config"].items()
        if "default" in spec
    }
    merged.update({key: config_text(value) for key, value in (stack_yaml.get("config") or {}).items()})
    return merged


def config_from(raw: dict[str, str]) -> PlatformConfig:
    """The :class:`PlatformConfig` the program loads from raw Pulumi config (as the CLI hands it over)."""
    pulumi.runtime.set_all_config(raw, [])
    try:
        return load_config()
    finally:
        pulumi.runtime.set_all_config({}, [])


def dev_stack_problems(project_yaml: dict[str, Any], stack_yaml: dict[str, Any]) -> list[str]:
    """What is wrong with a stack file, as committed or as the Pulumi CLI rewrote it (values as strings)."""
    namespace = project_yaml["name"]
    declared = {f"{namespace}:{key}" for key in project_yaml["config"]}
    problems = []
    for key, value in (stack_yaml.get("config") or {}).items():
        if key.startswith("aiven:"):
            # Only an encrypted value (pulumi config set --secret) may ever appear here.
            if not (isinstance(value, dict) and set(value) == {"secure"}):
                problems.append(f"{key} must be set with --secret")
        elif key not in declared:
            problems.append(f"{key} is not declared in Pulumi.yaml")
    if not (stack_yaml.get("config") or {}).get(f"{namespace}:project"):
        problems.append(f"{namespace}:project is not set")
    return problems


class ProgramRunner:
    """Runs the program, or any callable, under fresh mocks; one instance per test."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, config: dict[str, str]) -> ProgramRun:
        """Run ``infra/`` as the CLI does: ``runpy.run_path("infra")`` from the project root, in ``run_in_stack``."""

        def program() -> None:
            previous = os.getcwd()
            os.chdir(PROJECT_ROOT)
            try:
                runpy.run_path("infra", run_name="__main__")
            finally:
                os.chdir(previous)

        return self.run(config, program)

    def run(self, config: dict[str, str], program: Callable[[], Any]) -> ProgramRun:
        mocks = AivenMocks()
        monitor = RecordingMonitor(mocks)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            settings.set_root_resource(None)  # type: ignore[arg-type]
            pulumi.runtime.set_all_config(config, [])
            pulumi.runtime.set_mocks(mocks, project="clickstream", stack=STACK, preview=False, monitor=monitor)
            # set_mocks registers a placeholder root stack; flush it, then let run_in_stack
            # create the real one, as the CLI's entry point does.
            loop.run_until_complete(wait_for_rpcs())
            monitor.clear()
            settings.set_root_resource(None)  # type: ignore[arg-type]
            loop.run_until_complete(run_in_stack(program))
            self.runs += 1
        finally:
            settings.SETTINGS.outputs.clear()
            settings.set_root_resource(None)  # type: ignore[arg-type]
            pulumi.runtime.set_all_config({}, [])
            asyncio.set_event_loop(None)
            loop.close()
        for registered in monitor.registrations:
            registered.inputs = mocks.inputs_by_name.get(registered.name, {})
        stacks = [r for r in monitor.registrations if r.type == "pulumi:pulumi:Stack"]
        assert len(stacks) == 1, "the program must run inside exactly one root stack"
        return ProgramRun(
            resources=[r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"],
            stack_wire_outputs=monitor.resource_outputs.get(stacks[0].urn, {}),
            calls=list(mocks.calls),
        )
