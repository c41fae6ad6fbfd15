"""Aiven's published API schema as a test oracle: fetch it with the Go toolchain, check configs against it.

(A uniquely named helper module, like ``infra_harness``, so test modules can import it.)

Aiven publishes the schema of every service type's user config as the Go module
``github.com/aiven/go-api-schemas`` (``pkg/dist/service_types.yml``). ``go mod download``
fetches a version from the Go module proxy into the module cache, where it stays, so
only the first run needs the network.

The validator reads user configs as the Pulumi engine receives them from the program
(camelCase keys, numbers as floats) and checks them the way the API would: known keys
only, the right types, numbers and lengths in range, enum values present and not
deprecated, no deprecated key. Keys Aiven accepts only at creation (``create_only``) are
reported separately, so a test can hold them to a known list.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.aiven_schema import SCHEMA_MODULE

#: Where each service's user config is among the inputs the engine records: (schema service type, input key).
USER_CONFIGS = {
    "aiven:index/kafka:Kafka": ("kafka", "kafkaUserConfig"),
    "aiven:index/pg:Pg": ("pg", "pgUserConfig"),
    "aiven:index/openSearch:OpenSearch": ("opensearch", "opensearchUserConfig"),
}
#: Provider argument names that the provider sends to the API under another key.
_PROVIDER_ALIASES = {"ip_filter_strings": "ip_filter", "ip_filter_objects": "ip_filter", "ip_filters": "ip_filter"}
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "number": (int, float),
    "integer": (int, float),
    "null": (type(None),),
}


class SchemaUnavailable(RuntimeError):
    """The Go toolchain could not fetch the schema module (no proxy, no cache)."""


def _go(*args: str) -> str:
    """Run ``go`` outside any module (a fresh directory), returning stdout or raising SchemaUnavailable."""
    with tempfile.TemporaryDirectory(prefix="aiven-schema-") as work:
        try:
            done = subprocess.run(
                ["go", *args],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"},
            )
        except FileNotFoundError:
            raise SchemaUnavailable("the Go toolchain (go) is not on PATH") from None
        except subprocess.TimeoutExpired:
            raise SchemaUnavailable(f"go {' '.join(args)} timed out") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SchemaUnavailable(f"go {' '.join(args)} failed: {last}")
    return done.stdout


@cache
def service_types(version: str) -> dict[str, Any]:
    """``service_types.yml`` of that schema version, parsed."""
    info = json.loads(_go("mod", "download", "-json", f"{SCHEMA_MODULE}@{version}"))
    if info.get("Error"):
        raise SchemaUnavailable(str(info["Error"]))
    path = Path(info["Dir"]) / "pkg" / "dist" / "service_types.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def newest_version() -> str:
    """The newest version of the schema module the Go module proxy lists today."""
    return str(json.loads(_go("list", "-m", "-json", f"{SCHEMA_MODULE}@latest"))["Version"])


def enum_values(schema: dict[str, Any], service: str, key: str, *, deprecated: bool) -> tuple[str, ...]:
    """The values of one enum-typed user-config key, deprecated or not, in schema order."""
    entries = schema[service]["properties"][key]["enum"]
    return tuple(str(e["value"]) for e in entries if bool(e.get("is_deprecated")) is deprecated)


def snake(name: str) -> str:
    """``kafkaAuthenticationMethods`` -> ``kafka_authentication_methods`` (the engine's keys -> the API's)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    create_only: list[str] = field(default_factory=list)


def validate_user_config(schema: dict[str, Any], service: str, config: dict[str, Any]) -> Report:
    """Check one service's user config (as the engine received it) against that service type's schema."""
    report = Report()
    _object(schema[service], config, service, report, provider_names=True)
    return report


def _object(spec: dict[str, Any], value: dict[str, Any], path: str, report: Report, *, provider_names: bool) -> None:
    properties = spec.get("properties") or {}
    for raw_key, item in value.items():
        key = snake(raw_key) if provider_names else raw_key
        key = _PROVIDER_ALIASES.get(key, key) if provider_names else key
        where = f"{path}.{key}"
        if key not in properties:
            report.problems.append(f"{where}: not a key of the schema")
            continue
        _value(properties[key], item, where, report, provider_names=provider_names)


def _value(spec: dict[str, Any], value: Any, where: str, report: Report, *, provider_names: bool) -> None:
    if spec.get("is_deprecated"):
        report.problems.append(f"{where}: deprecated key ({spec.get('deprecation_notice', '')})".rstrip())
    if spec.get("create_only"):
        report.create_only.append(where)
    types = spec.get("type") or []
    types = [types] if isinstance(types, str) else list(types)
    if types and not _has_type(value, types):
        report.problems.append(f"{where}: {value!r} is not of type {'/'.join(types)}")
        return
    if "enum" in spec:
        entries = {str(e["value"]): bool(e.get("is_deprecated")) for e in spec["enum"]}
        if str(value) not in entries:
            report.problems.append(f"{where}: {value!r} is not one of {', '.join(entries)}")
        elif entries[str(value)]:
            report.problems.append(f"{where}: {value!r} is deprecated")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in spec and value < float(spec["minimum"]):
            report.problems.append(f"{where}: {value} is below the minimum {spec['minimum']}")
        if "maximum" in spec and value > float(spec["maximum"]):
            report.problems.append(f"{where}: {value} is above the maximum {spec['maximum']}")
    if isinstance(value, str):
        if "max_length" in spec and len(value) > int(spec["max_length"]):
            report.problems.append(f"{where}: longer than {spec['max_length']} characters")
        if "min_length" in spec and len(value) < int(spec["min_length"]):
            report.problems.append(f"{where}: shorter than {spec['min_length']} characters")
        if "pattern" in spec and not re.search(spec["pattern"], value):
            report.problems.append(f"{where}: {value!r} does not match {spec['pattern']}")
    if isinstance(value, dict):
        _object(spec, value, where, report, provider_names=provider_names)
    if isinstance(value, list):
        if "max_items" in spec and len(value) > int(spec["max_items"]):
            report.problems.append(f"{where}: more than {spec['max_items']} items")
        for index, item in enumerate(value):
            _value(spec.get("items") or {}, item, f"{where}[{index}]", report, provider_names=provider_names)


def _has_type(value: Any, types: list[str]) -> bool:
    for name in types:
        if name in ("integer", "number") and isinstance(value, bool):
            continue
        if name == "integer" and isinstance(value, float) and not value.is_integer():
            continue
        if isinstance(value, _PY_TYPES.get(name, ())):
            return True
    return False
