"""The --dump format: one JSON line per message, exact bytes back on reading."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipeline.simulation import DumpRecord, SimulatedMessage, format_dump_line, parse_dump_line, read_dump


def test_lines_round_trip_exact_bytes(faulty_stream: list[SimulatedMessage], tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    with open(path, "wb") as fh:
        for m in faulty_stream:
            fh.write(format_dump_line(m))
    records = list(read_dump(path))
    assert records == [DumpRecord(m.kind, m.key, m.value) for m in faulty_stream]
    assert len(path.read_bytes().splitlines()) == len(faulty_stream)


def test_text_when_utf8_base64_otherwise() -> None:
    readable = json.loads(format_dump_line(SimulatedMessage(b"u-1", b'{"a":"caf\xc3\xa9"}', "valid")))
    assert readable == {"kind": "valid", "key": "u-1", "value": '{"a":"café"}'}
    broken = json.loads(format_dump_line(SimulatedMessage(b"u-1", b'{"a":"\xff"}', "malformed:invalid_utf8")))
    assert broken["kind"] == "malformed:invalid_utf8"
    assert "value" not in broken and broken["value_b64"] == "eyJhIjoi/yJ9"
    assert parse_dump_line(json.dumps(broken)).value == b'{"a":"\xff"}'


def test_each_line_is_one_line() -> None:
    line = format_dump_line(SimulatedMessage(b"k", b'{"q":"two\\nlines"}\n', "valid"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_reader_accepts_file_objects_and_skips_blank_lines() -> None:
    data = (
        format_dump_line(SimulatedMessage(b"k", b"v", "duplicate"))
        + b"\n"
        + format_dump_line(SimulatedMessage(b"k", b"w", "late"))
    )
    assert [r.kind for r in read_dump(io.BytesIO(data))] == ["duplicate", "late"]


def test_reader_rejects_a_line_without_value() -> None:
    with pytest.raises(ValueError):
        parse_dump_line(b'{"kind":"valid","key":"k"}')
