"""Dead letters as an operator sees them: any bytes, any headers, printed safely and losslessly in JSON."""

from __future__ import annotations

import base64
import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.ops.dead_letter_queue import StoredDeadLetter, check_replayable, parse_ids, render, safe_text

header_names = st.sampled_from(
    [
        "dlq.reason",
        "dlq.field",
        "dlq.detail",
        "dlq.truncated",
        "dlq.original_size",
        "dlq.source.topic",
        "dlq.brand.new.header",
    ]
)
letters = st.builds(
    StoredDeadLetter,
    partition=st.integers(0, 50),
    offset=st.integers(0, 2**40),
    timestamp_ms=st.none() | st.integers(0, 4_102_444_800_000),
    key=st.none() | st.binary(max_size=40),
    value=st.binary(max_size=400),
    headers=st.dictionaries(header_names, st.text(max_size=60), max_size=6),
)


def _unsafe(ch: str) -> bool:
    return ch != " " and unicodedata.category(ch)[0] in "CZ"


@given(st.text())
def test_safe_text_leaves_no_control_format_or_separator_character(text: str) -> None:
    shown = safe_text(text)
    assert not any(_unsafe(ch) for ch in shown)
    if not any(_unsafe(ch) for ch in text) and "\\" not in text:
        assert shown == text


@given(st.lists(letters, min_size=1, max_size=5))
def test_the_listing_has_one_safe_line_per_part_whatever_the_bytes(batch: list[StoredDeadLetter]) -> None:
    text = render(batch, "dlq-topic")
    for line in text.split("\n"):
        assert not any(_unsafe(ch) for ch in line), line
    for letter in batch:
        assert f"{letter.id}" in text and f"value ({len(letter.value):,} bytes)" in text
        for name in letter.headers:
            assert name in ("dlq.reason", "dlq.field") or f"    {name}: " in text


@given(letters)
def test_json_keeps_every_header_and_the_exact_bytes(letter: StoredDeadLetter) -> None:
    data = json.loads(json.dumps(letter.to_dict()))
    assert data["headers"] == letter.headers and data["size"] == len(letter.value)
    value = data["value"].encode() if data["value"] is not None else base64.b64decode(data["value_base64"])
    assert value == letter.value
    if letter.key is not None:
        key = data["key"].encode() if data["key"] is not None else base64.b64decode(data["key_base64"])
        assert key == letter.key


@given(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 10**12)), max_size=6))
def test_ids_parse_in_order_without_repeats(pairs: list[tuple[int, int]]) -> None:
    assert parse_ids([f"{p}:{o}" for p, o in pairs + pairs]) == list(dict.fromkeys(pairs))


@pytest.mark.parametrize("bad", ["3", "a:1", "1:-2", "1:2:3", "\x1b[31m1:2", ""])
def test_a_malformed_id_is_one_line_without_raw_escapes(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ids([bad])
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)


def _letter(offset: int, **headers: str) -> StoredDeadLetter:
    return StoredDeadLetter(0, offset, None, b"k", b"{}", {f"dlq.{k.replace('_', '.')}": v for k, v in headers.items()})


def test_truncated_or_foreign_letters_are_refused_before_anything_is_sent() -> None:
    check_replayable([_letter(1, reason="wrong_type", source_topic="events")], "events")
    with pytest.raises(ConfigError, match=r"0:2 holds only the first bytes .*dlq.truncated=true.*Nothing was replayed"):
        check_replayable([_letter(1), _letter(2, truncated="true", original_size="2000000")], "events")
    with pytest.raises(ConfigError, match="0:3 came from another topic"):
        check_replayable([_letter(3, source_topic="elsewhere")], "events")
