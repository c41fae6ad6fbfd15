"""The ``--dump FILE`` format: one JSON line per message exactly as sent, and its reader.

Why a dump: an end-to-end test needs the ground truth of what went into Kafka (which
messages, which were duplicates, late or malformed) to check what came out of
PostgreSQL and OpenSearch. Each line holds ``kind`` and the exact key and value bytes:
as text when they are valid UTF-8 (readable with ``jq``), else base64 under
``key_b64`` / ``value_b64``. Nothing is re-encoded, so reading a dump gives back the
very bytes the producer sent.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from pipeline.simulation.record import SimulatedMessage


class DumpRecord(msgspec.Struct, frozen=True):
    """One dumped message: its kind and exact key/value bytes."""

    kind: str
    key: bytes
    value: bytes


_ENCODER = msgspec.json.Encoder()
_LINE_DECODER = msgspec.json.Decoder(dict[str, str])


def _put(out: dict[str, str], name: str, data: bytes) -> None:
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[name + "_b64"] = base64.b64encode(data).decode("ascii")


def format_dump_line(message: SimulatedMessage) -> bytes:
    """The dump line of ``message``, newline-terminated (write it to a file opened ``wb``)."""
    out: dict[str, str] = {"kind": message.kind}
    _put(out, "key", message.key)
    _put(out, "value", message.value)
    return _ENCODER.encode(out) + b"\n"


def _get(fields: dict[str, str], name: str) -> bytes:
    if name in fields:
        return fields[name].encode("utf-8")
    if name + "_b64" in fields:
        return base64.b64decode(fields[name + "_b64"], validate=True)
    raise ValueError(f"dump line has neither {name} nor {name}_b64")


def parse_dump_line(line: bytes | str) -> DumpRecord:
    """The record of one dump line (as written by ``format_dump_line``)."""
    fields = _LINE_DECODER.decode(line)
    return DumpRecord(fields["kind"], _get(fields, "key"), _get(fields, "value"))


def read_dump(source: str | Path | IO[bytes] | Iterable[bytes]) -> Iterator[DumpRecord]:
    """Every record of a dump file (path, binary file object or iterable of lines)."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            yield from read_dump(fh)
        return
    for line in source:
        if line.strip():
            yield parse_dump_line(line)
