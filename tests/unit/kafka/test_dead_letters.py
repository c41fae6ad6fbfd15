"""Sizing a dead letter: the original when it fits, a bounded prefix with the agreed headers when not."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.kafka.dead_letters import (
    DEAD_LETTER_MAX_BYTES,
    KEY_PREFIX_BYTES,
    PREFIX_BYTES,
    DeadLetter,
    parse_headers,
    record_size,
)

FAILED_AT = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def letter(value: bytes, key: bytes | None = b"u-1", detail: str = "why") -> DeadLetter:
    return DeadLetter(
        key=key,
        value=value,
        reason="not_json",
        field=None,
        detail=detail,
        source_topic="events",
        source_partition=4,
        source_offset=123456,
        source_timestamp_ms=1_796_032_867_123,
    )


def test_a_letter_that_fits_keeps_the_original_and_says_nothing_of_truncation() -> None:
    key, value, headers = letter(b"{oops").record(FAILED_AT, "group")
    assert (key, value) == (b"u-1", b"{oops")
    parsed = parse_headers(headers)
    assert "truncated" not in parsed and "original_size" not in parsed
    assert parsed["reason"] == "not_json" and parsed["source.offset"] == "123456"


def test_the_largest_value_that_fits_is_kept_whole_and_one_byte_more_is_cut() -> None:
    empty = letter(b"")
    room = DEAD_LETTER_MAX_BYTES - record_size(empty.key, b"", empty.headers(FAILED_AT, "group"))
    _, value, headers = letter(b"x" * room).record(FAILED_AT, "group")
    assert len(value) == room and "truncated" not in parse_headers(headers)
    _, value, headers = letter(b"x" * (room + 1)).record(FAILED_AT, "group")
    assert value == b"x" * PREFIX_BYTES
    assert parse_headers(headers)["truncated"] == "true"
    assert parse_headers(headers)["original_size"] == str(room + 1)


@pytest.mark.parametrize("size", [1_000_000, 1_048_576, 5_000_000])
def test_an_oversized_value_becomes_a_bounded_prefix_within_the_limit(size: int) -> None:
    original = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    key, value, headers = letter(original).record(FAILED_AT, "group")
    assert value == original[:PREFIX_BYTES]
    assert record_size(key, value, headers) <= DEAD_LETTER_MAX_BYTES
    parsed = parse_headers(headers)
    assert (parsed["truncated"], parsed["original_size"]) == ("true", str(size))
    assert parsed["source.partition"] == "4" and parsed["source.offset"] == "123456"


def test_a_huge_key_is_cut_too_and_says_so() -> None:
    key, value, headers = letter(b"{}", key=b"k" * 2_000_000).record(FAILED_AT, "group")
    assert key == b"k" * KEY_PREFIX_BYTES and value == b"{}"
    parsed = parse_headers(headers)
    assert parsed["original_key_size"] == "2000000" and parsed["truncated"] == "true"
    assert record_size(key, value, headers) <= DEAD_LETTER_MAX_BYTES


def test_long_details_are_bounded() -> None:
    _, _, headers = letter(b"x", detail="d" * 50_000).record(FAILED_AT, "group")
    assert len(parse_headers(headers)["detail"]) == 1000


def test_a_smaller_limit_and_prefix_are_honoured() -> None:
    key, value, headers = letter(b"y" * 5000).record(FAILED_AT, "group", limit=0, prefix=10)
    assert value == b"y" * 10 and parse_headers(headers)["original_size"] == "5000"
