"""The pure builders: event and session documents, bulk action lines, chunking."""

from __future__ import annotations

import datetime as dt
import enum
import json
import random
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import pytest

from pipeline.contract.event import FIELDS, format_timestamp
from pipeline.contract.names import IndexNames
from pipeline.errors import IndexingError
from pipeline.sinks.opensearch.documents import (
    EVENT_DOCUMENT_FIELDS,
    BulkItem,
    bulk_body,
    bulk_items,
    chunks,
    encode_event_document,
    event_document,
    event_item,
    index_action,
    iso_millis,
    session_document,
    session_item,
    session_value,
)
from tests.support.events import (
    T0,
    UTC,
    envelope,
    make_event,
    make_page_view,
    make_search,
    session_row,
)

NAMES = IndexNames("t-clickstream")


# --- timestamps -----------------------------------------------------------------------------


def test_iso_millis_matches_the_contract_formatter() -> None:
    rng = random.Random(11)
    zones = [
        UTC,
        ZoneInfo("Europe/Helsinki"),
        ZoneInfo("America/Los_Angeles"),
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
    ]
    for _ in range(5_000):
        value = dt.datetime(2000, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=rng.randrange(10**15))
        value = value.astimezone(rng.choice(zones))
        assert iso_millis(value) == format_timestamp(value)


def test_iso_millis_truncates_to_milliseconds_in_utc() -> None:
    assert iso_millis(dt.datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2026-01-02T03:04:05.999Z"
    helsinki = dt.datetime(2026, 1, 1, 1, 30, tzinfo=ZoneInfo("Europe/Helsinki"))
    assert iso_millis(helsinki) == "2025-12-31T23:30:00.000Z"


def test_iso_millis_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        iso_millis(dt.datetime(2026, 1, 1))


# --- event documents --------------------------------------------------------------------------


def test_event_document_has_every_contract_field_then_the_sink_fields() -> None:
    doc = event_document(envelope(make_event()))
    assert tuple(doc) == FIELDS + ("page_path", "ingested_at", "kafka_partition", "kafka_offset")
    assert tuple(doc) == EVENT_DOCUMENT_FIELDS


def test_event_document_values() -> None:
    event = make_event(occurred_at=dt.datetime(2026, 11, 30, 23, 59, 59, 999000, tzinfo=UTC))
    doc = event_document(envelope(event, partition=4, offset=987654321012, ingested_at=T0))
    assert doc["event_id"] == event.event_id
    assert doc["occurred_at"] == "2026-11-30T23:59:59.999Z"
    assert doc["ingested_at"] == "2026-11-30T09:41:07.123Z"
    assert doc["page_path"] == "/checkout/done"
    assert doc["kafka_partition"] == 4
    assert doc["kafka_offset"] == 987654321012
    assert doc["price"] == Decimal("49.90")
    assert doc["element_id"] is None


def test_encoded_event_document_is_the_document_as_json_with_exact_money() -> None:
    env = envelope(make_event())
    raw = encode_event_document(env)
    assert json.loads(raw, parse_float=Decimal) == event_document(env)
    assert b'"price":49.90' in raw and b'"revenue":99.80' in raw


def test_search_query_with_unicode_and_quotes_survives_encoding() -> None:
    env = envelope(make_search('"kengät" \\ 靴 \u2028'))
    assert msgspec.json.decode(encode_event_document(env))["search_query"] == '"kengät" \\ 靴 \u2028'


def test_events_index_is_the_utc_month_of_occurred_at() -> None:
    assert NAMES.events_index(T0) == "t-clickstream-events-2026.11"
    late = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 23:30 UTC on Nov 30
    assert NAMES.events_index(late) == "t-clickstream-events-2026.11"
    assert NAMES.events_index(dt.datetime(2027, 1, 1, tzinfo=UTC)) == "t-clickstream-events-2027.01"


def test_event_item_is_a_versioned_index_action_with_the_event_id_in_its_month() -> None:
    env = envelope(make_page_view(occurred_at=dt.datetime(2027, 2, 3, tzinfo=UTC)))
    item = event_item(env, NAMES, 41)
    assert item.kind == "event" and item.doc_id == env.event.event_id
    assert item.target == "t-clickstream-events-2027.02"
    action, document, end = item.payload.split(b"\n")
    assert end == b""
    assert json.loads(action) == {
        "index": {
            "_index": "t-clickstream-events-2027.02",
            "_id": env.event.event_id,
            "version": 41,
            "version_type": "external",
        }
    }
    assert json.loads(document)["page_path"] == "/product/42"


def test_event_item_is_deterministic() -> None:
    env = envelope(make_event())
    assert event_item(env, NAMES, 3) == event_item(env, NAMES, 3)


def test_index_action_with_an_external_version() -> None:
    assert json.loads(index_action("i", "s-1", version=7)) == {
        "index": {"_index": "i", "_id": "s-1", "version": 7, "version_type": "external"}
    }
    assert json.loads(index_action("i", 'we"ird', version=1))["index"]["_id"] == 'we"ird'


# --- session documents ----------------------------------------------------------------------


def test_session_values_are_converted_for_json() -> None:
    assert session_value(Decimal("180.456")) == 180.456
    assert isinstance(session_value(Decimal("2")), float)
    assert session_value(dt.datetime(2026, 11, 30, 9, 41, 7, 123456, tzinfo=UTC)) == "2026-11-30T09:41:07.123Z"
    assert session_value(dt.date(2026, 11, 30)) == "2026-11-30"
    assert session_value(dt.timedelta(minutes=1, milliseconds=500)) == 60.5
    assert session_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    for plain in (None, True, False, 3, 2.5, "x"):
        assert session_value(plain) is plain

    class Status(enum.StrEnum):
        OPEN = "open"

    class Stamp(dt.datetime):
        pass

    assert session_value(Status.OPEN) == "open"
    assert session_value(Stamp(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"
    assert session_value([Decimal("1.5"), None]) == [1.5, None]
    with pytest.raises(TypeError):
        session_value(b"bytes")
    with pytest.raises(TypeError):
        session_value(dt.datetime(2026, 1, 1))


def test_session_document_keeps_every_column_and_the_version() -> None:
    row = session_row(version=12)
    doc = session_document(row)
    assert list(doc) == list(row)
    assert doc["version"] == 12
    assert doc["revenue"] == 99.8 and doc["duration_s"] == 180.456
    assert doc["started_at"] == "2026-11-30T09:41:07.123Z"
    assert doc["ended_at"] == "2026-11-30T09:44:07.579Z"
    assert doc["converted"] is True and doc["events"] == 5


def test_session_item_uses_the_alias_the_session_id_and_an_external_version() -> None:
    item = session_item(session_row("s-9", version=3), NAMES)
    assert (item.kind, item.doc_id, item.target) == ("session", "s-9", "t-clickstream-sessions")
    action, document, _ = item.payload.split(b"\n")
    assert json.loads(action) == {
        "index": {"_index": "t-clickstream-sessions", "_id": "s-9", "version": 3, "version_type": "external"}
    }
    assert json.loads(document)["session_id"] == "s-9"


@pytest.mark.parametrize("version", [None, -1, 2**63, "3", True, 1.0])
def test_session_item_refuses_a_bad_version(version: object) -> None:
    with pytest.raises(IndexingError, match="s-1"):
        session_item(session_row(version=version), NAMES)  # type: ignore[arg-type]


def test_session_item_refuses_a_row_without_session_id() -> None:
    row = session_row()
    del row["session_id"]
    with pytest.raises(IndexingError, match="session_id"):
        session_item(row, NAMES)


def test_session_document_names_the_column_it_cannot_convert() -> None:
    with pytest.raises(IndexingError, match="'s-1'.*'blob'"):
        session_document(session_row(blob=memoryview(b"x")))


def test_bulk_items_puts_events_first_then_sessions() -> None:
    envs = [envelope(make_event()) for _ in range(3)]
    items = bulk_items(envs, [session_row("a"), session_row("b")], NAMES)
    assert [i.kind for i in items] == ["event"] * 3 + ["session"] * 2
    assert [i.doc_id for i in items] == [e.event.event_id for e in envs] + ["a", "b"]


# --- chunking -------------------------------------------------------------------------------


def _items(sizes: list[int]) -> list[BulkItem]:
    return [BulkItem("event", str(i), "x", b"a" * (size - 1) + b"\n") for i, size in enumerate(sizes)]


def test_chunks_by_count() -> None:
    items = _items([10] * 7)
    parts = list(chunks(items, max_docs=3, max_bytes=10**6))
    assert [len(p) for p in parts] == [3, 3, 1]


def test_chunks_by_bytes_never_exceeding_the_limit() -> None:
    items = _items([40, 40, 30, 50, 10, 100])
    parts = list(chunks(items, max_docs=100, max_bytes=100))
    assert [[i.doc_id for i in p] for p in parts] == [["0", "1"], ["2", "3", "4"], ["5"]]
    assert all(len(bulk_body(p)) <= 100 for p in parts)


def test_an_item_larger_than_the_limit_travels_alone() -> None:
    items = _items([10, 500, 10])
    parts = list(chunks(items, max_docs=100, max_bytes=100))
    assert [[i.doc_id for i in p] for p in parts] == [["0"], ["1"], ["2"]]


def test_chunks_keep_every_item_in_order() -> None:
    rng = random.Random(3)
    items = _items([rng.randint(1, 300) for _ in range(2_000)])
    for max_docs, max_bytes in [(1, 10**6), (7, 500), (1000, 10**6), (50, 2_000)]:
        parts = list(chunks(items, max_docs=max_docs, max_bytes=max_bytes))
        assert [i for p in parts for i in p] == items
        assert all(0 < len(p) <= max_docs for p in parts)
        assert all(len(bulk_body(p)) <= max_bytes or len(p) == 1 for p in parts)


def test_no_chunks_for_no_items_and_bad_limits_are_refused() -> None:
    assert list(chunks([], max_docs=10, max_bytes=10)) == []
    with pytest.raises(ValueError):
        list(chunks(_items([1]), max_docs=0, max_bytes=10))


def test_bulk_body_is_valid_ndjson_of_action_and_document_pairs() -> None:
    items = bulk_items([envelope(make_event())], [session_row()], NAMES)
    lines = bulk_body(items).split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5
    assert [next(iter(json.loads(lines[i]))) for i in (0, 2)] == ["index", "index"]
