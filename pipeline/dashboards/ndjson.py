"""Saved objects and their NDJSON form: the one format the Dashboards import API reads.

The same parser reads the shipped file, checks what the importer is about to send, and
reads what a test server received, so "the file is valid" means one thing everywhere.
Serialisation is canonical (sorted keys, no spaces, one object a line) so the shipped
file is byte-for-byte reproducible from the code that builds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError


class SavedObjectsFileError(ConfigError):
    """A saved-objects NDJSON text that the import API would reject; says which line and why."""


@dataclass(frozen=True)
class Reference:
    name: str
    type: str
    id: str


@dataclass(frozen=True)
class SavedObject:
    """One saved object: what the import API needs (type, id, attributes, references)."""

    type: str
    id: str
    attributes: dict[str, Any]
    references: tuple[Reference, ...] = field(default_factory=tuple)

    @property
    def title(self) -> str:
        return str(self.attributes.get("title", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "attributes": self.attributes,
            "references": [{"name": r.name, "type": r.type, "id": r.id} for r in self.references],
        }


def dumps(objects: Iterable[SavedObject]) -> bytes:
    """Canonical NDJSON: one object a line, sorted keys, UTF-8, a trailing newline."""
    lines = [json.dumps(o.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) for o in objects]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def loads(data: bytes | str) -> list[SavedObject]:
    """Every saved object of an NDJSON text; blank lines are skipped, anything else malformed is refused."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SavedObjectsFileError(f"saved objects are not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    objects: list[SavedObject] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        obj = _parse_line(line, number)
        if (obj.type, obj.id) in seen:
            raise SavedObjectsFileError(f"saved objects line {number}: {obj.type} {obj.id!r} appears twice")
        seen.add((obj.type, obj.id))
        objects.append(obj)
    return objects


def _parse_line(line: str, number: int) -> SavedObject:
    where = f"saved objects line {number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SavedObjectsFileError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise SavedObjectsFileError(f"{where}: must be a JSON object")
    for key in ("type", "id"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SavedObjectsFileError(f"{where}: {key!r} must be a non-empty string")
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        raise SavedObjectsFileError(f"{where}: 'attributes' must be an object")
    references = raw.get("references", [])
    if not isinstance(references, list):
        raise SavedObjectsFileError(f"{where}: 'references' must be a list")
    return SavedObject(raw["type"], raw["id"], attributes, tuple(_reference(r, where) for r in references))


def _reference(raw: object, where: str) -> Reference:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw[k] for k in ("name", "type", "id")):
        raise SavedObjectsFileError(f"{where}: every reference needs string 'name', 'type' and 'id'")
    return Reference(raw["name"], raw["type"], raw["id"])


def by_key(objects: Sequence[SavedObject]) -> dict[tuple[str, str], SavedObject]:
    return {(o.type, o.id): o for o in objects}
