"""PostgresStore.write against a real server: exact session rows, idempotence, failures.

Expected rows come from tests/support/truth.py (plain Python), never
from the SQL under test.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec
import psycopg
import pytest
from psycopg.rows import dict_row

from pipeline.config.secret import Secret
from pipeline.config.settings import Settings
from pipeline.contract.event import FIELDS, Event
from pipeline.errors import ServiceError, SinkUnavailable
from pipeline.sinks.batch import Envelope
from pipeline.sinks.postgres.store import PostgresStore
from tests.integration.postgres.session_events import (
    DOCUMENT,
    METRICS,
    at,
    document_of,
    envelopes,
    event_id,
    make_event,
    metrics_of,
)
from tests.support.truth import expected_sessions, path_of

# --- the hand-designed sessions ---------------------------------------------------------
# s-tie: its first two page views share a timestamp; event_id decides which one is first
# (landing page, referrer, device all come from it). Its last two page views also share
# a timestamp; the larger event_id is the exit page.
TIE = [
    make_event(
        "s-tie",
        "page_view",
        at(0),
        path="/home",
        eid=event_id(20),
        referrer="https://www.google.com/",
        utm=("google", "cpc", "winter"),
    ),
    make_event(
        "s-tie",
        "page_view",
        at(0),
        path="/product/42?ref=home",
        eid=event_id(10),
        device=("mobile", "Safari", "iOS"),
        country="FI",
    ),
    make_event("s-tie", "click", at(3.5), path="/product/42"),
    make_event("s-tie", "add_to_cart", at(7.25), path="/product/42", price="19.99"),
    make_event("s-tie", "purchase", at(12.125), path="/checkout", price="19.99", revenue="39.98", eid=event_id(30)),
    make_event("s-tie", "purchase", at(12.126), path="/checkout", price="5.01", revenue="5.01"),
    make_event("s-tie", "page_view", at(12.5), path="/thanks", eid=event_id(40)),
    make_event("s-tie", "page_view", at(12.5), path="/receipt", eid=event_id(5)),
]
# s-bounce: one page view, nothing else.
BOUNCE = [make_event("s-bounce", "page_view", at(100), path="/landing", utm=("news", "email", "weekly"))]
# s-nopv: no page view at all (no landing/exit page), engaged by duration only (12.345 s).
NOPV = [make_event("s-nopv", "search", at(200)), make_event("s-nopv", "click", at(212.345))]
# s-ten: exactly 10 s, no page view, no purchase: engaged by the duration rule alone (>= 10).
TEN = [make_event("s-ten", "click", at(500)), make_event("s-ten", "search", at(510))]
# s-same: two page views of the same path (one unique page), engaged by page views.
SAME = [
    make_event("s-same", "page_view", at(300), path="/a"),
    make_event("s-same", "page_view", at(301), path="/a?x=1"),
]
# s-late: its earliest event arrives in the second batch and changes start, landing page,
# attribution and duration; its short first part alone is a bounce.
LATE_EARLY = make_event("s-late", "page_view", at(400), path="/sale", referrer="https://news.example.org/x")
LATE = [make_event("s-late", "page_view", at(409), path="/sale/shoes"), make_event("s-late", "click", at(409.5))]

ALL = TIE + BOUNCE + NOPV + TEN + SAME + LATE + [LATE_EARLY]


def rows_by_session(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["session_id"]: row for row in rows}


def table(db: Settings, name: str, order: str) -> list[dict[str, Any]]:
    with psycopg.connect(db.postgres.conninfo("admin"), row_factory=dict_row) as conn:
        return conn.execute(f"SELECT * FROM {name} ORDER BY {order}").fetchall()  # noqa: S608 - fixed names


def test_the_expected_values_are_what_the_sessions_were_designed_for() -> None:
    """Guards the truth helper itself against silently agreeing with a wrong design."""
    truth = expected_sessions(ALL)
    tie = truth["s-tie"]
    assert (tie["landing_page"], tie["exit_page"], tie["referrer"], tie["device_type"]) == (
        "/product/42",
        "/thanks",
        None,
        "mobile",
    )
    assert (tie["revenue"], tie["duration_s"], tie["unique_pages"]) == (Decimal("44.99"), Decimal("12.5"), 4)
    assert truth["s-bounce"]["is_bounce"] and not truth["s-nopv"]["is_bounce"]
    assert truth["s-nopv"]["landing_page"] is None and truth["s-nopv"]["duration_s"] == Decimal("12.345")
    assert truth["s-same"]["unique_pages"] == 1 and truth["s-same"]["is_engaged"]
    assert truth["s-ten"]["duration_s"] == 10 and truth["s-ten"]["is_engaged"] and not truth["s-ten"]["converted"]
    assert truth["s-late"]["started_at"] == at(400) and truth["s-late"]["landing_page"] == "/sale"
    assert expected_sessions(LATE)["s-late"]["is_bounce"] and not truth["s-late"]["is_bounce"]
    assert tuple(expected_sessions(BOUNCE)["s-bounce"]) == METRICS


def test_sessions_are_exact_across_batches_out_of_order_with_duplicates(
    store: PostgresStore, migrated_db: Settings
) -> None:
    rng = random.Random(5)
    first_events = [TIE[6], TIE[0], TIE[4], TIE[2], *BOUNCE, *LATE]
    rng.shuffle(first_events)
    batch1 = envelopes(first_events, first_offset=100)
    batch1 += [batch1[0], Envelope(batch1[1].event, 3, 999, batch1[1].ingested_at)]  # duplicates within the batch

    rows1 = store.write(batch1)
    seen = [e.event for e in batch1]
    assert [r["session_id"] for r in rows1] == sorted({e.session_id for e in first_events})
    truth = expected_sessions(seen)
    for row in rows1:
        assert tuple(row) == DOCUMENT  # the public columns only, never the merge state
        assert metrics_of(row) == truth[row["session_id"]]
        assert row["version"] == 1
    assert store.last_timings.inserted == len(first_events)

    second_events = [TIE[5], TIE[1], TIE[3], TIE[7], *NOPV, *TEN, *SAME, LATE_EARLY]
    rng.shuffle(second_events)
    batch2 = envelopes(second_events + [TIE[4], BOUNCE[0]], first_offset=200)  # duplicates of batch 1 events

    rows2 = store.write(batch2)
    truth = expected_sessions(ALL)
    assert sorted(rows_by_session(rows2)) == ["s-bounce", "s-late", "s-nopv", "s-same", "s-ten", "s-tie"]
    for row in rows2:
        assert metrics_of(row) == truth[row["session_id"]], row["session_id"]
    assert store.last_timings.inserted == len(second_events)

    stored = rows_by_session(table(migrated_db, "sessions", "session_id"))
    assert {sid: metrics_of(r) for sid, r in stored.items()} == truth
    # a version counts the writes that merged new events: s-bounce's second batch only repeated its event
    assert {sid: r["version"] for sid, r in stored.items()} == {
        "s-tie": 2,
        "s-bounce": 1,
        "s-late": 2,
        "s-nopv": 1,
        "s-ten": 1,
        "s-same": 1,
    }
    assert rows_by_session(rows2) == {sid: document_of(r) for sid, r in stored.items()}
    events = table(migrated_db, "events", "event_id")
    assert len(events) == len(ALL) == len({e.event_id for e in ALL})


def test_events_are_stored_field_for_field_and_the_first_copy_wins(store: PostgresStore, migrated_db: Settings) -> None:
    event = TIE[4]
    first = Envelope(event, 2, 41, at(20))
    again = Envelope(event, 5, 77, at(30))
    store.write([first, again])
    (row,) = table(migrated_db, "events", "event_id")
    expected = msgspec.structs.asdict(event)
    assert {k: (str(v) if k == "event_id" else v) for k, v in row.items() if k in FIELDS} == expected
    assert row["page_path"] == path_of(event.page_url) == "/checkout"
    assert (row["ingested_at"], row["kafka_partition"], row["kafka_offset"]) == (at(20), 2, 41)


def test_writing_the_same_batch_twice_changes_nothing_at_all(store: PostgresStore, migrated_db: Settings) -> None:
    batch = envelopes(ALL)
    rows1 = store.write(batch)
    events1 = table(migrated_db, "events", "event_id")
    # xmin: the transaction that wrote each row version; an UPDATE, even to equal values, changes it
    sessions1 = table(migrated_db, "(SELECT xmin::text AS written_by, * FROM sessions) AS s", "session_id")
    rows2 = store.write(batch)

    assert table(migrated_db, "events", "event_id") == events1
    assert store.last_timings.inserted == 0
    assert table(migrated_db, "(SELECT xmin::text AS written_by, * FROM sessions) AS s", "session_id") == sessions1
    # the replay re-emits every session of the batch, as it is (what OpenSearch needs after a
    # crash between the PostgreSQL commit and the OpenSearch write): same version, same updated_at
    assert rows2 == rows1
    assert [metrics_of(r) for r in rows1] == [expected_sessions(ALL)[r["session_id"]] for r in rows1]
    assert rows_by_session(rows2) == {r["session_id"]: document_of(r) for r in sessions1}


def test_an_empty_batch_is_a_no_op(store: PostgresStore) -> None:
    assert store.write([]) == []


def test_a_rejected_batch_leaves_nothing_behind(store: PostgresStore, migrated_db: Settings) -> None:
    too_expensive = make_event("s-x", "purchase", at(1), price="10.00", revenue="10.00")
    too_expensive = msgspec.structs.replace(too_expensive, price=Decimal("99999999999.00"))  # overflows numeric(12,2)
    with pytest.raises(ServiceError) as info:
        store.write(envelopes([*BOUNCE, *SAME, too_expensive]))
    assert not isinstance(info.value, SinkUnavailable)
    assert table(migrated_db, "events", "event_id") == []
    assert table(migrated_db, "sessions", "session_id") == []
    # the store is still usable afterwards
    assert [r["session_id"] for r in store.write(envelopes(BOUNCE))] == ["s-bounce"]


def test_a_lost_connection_is_transient_and_the_store_reconnects(store: PostgresStore, migrated_db: Settings) -> None:
    store.write(envelopes(BOUNCE))
    pid = store.backend_pid
    with psycopg.connect(migrated_db.postgres.conninfo("admin"), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    batch = envelopes(TIE, first_offset=10)
    with pytest.raises(SinkUnavailable):
        store.write(batch)
    rows = store.write(batch)  # the consumer's retry
    assert store.backend_pid != pid
    assert [metrics_of(r) for r in rows] == [expected_sessions(TIE)["s-tie"]]
    counts = Counter(r["session_id"] for r in table(migrated_db, "events", "event_id"))
    assert counts == {"s-bounce": 1, "s-tie": len(TIE)}


def test_an_unreachable_server_is_transient(migrated_db: Settings) -> None:
    uri = urlsplit(migrated_db.postgres.app_uri.reveal())
    closed_port = uri._replace(netloc=uri.netloc.rsplit(":", 1)[0] + ":1").geturl()
    settings = dataclasses.replace(
        migrated_db, postgres=dataclasses.replace(migrated_db.postgres, app_uri=Secret(closed_port))
    )
    with PostgresStore(settings, connect_timeout=3) as store, pytest.raises(SinkUnavailable, match="cannot connect"):
        store.write(envelopes(BOUNCE))


def test_a_database_without_the_schema_is_a_clear_permanent_error(fresh_db: Settings) -> None:
    with PostgresStore(fresh_db) as store, pytest.raises(ServiceError, match="pipeline schema") as info:
        store.write(envelopes(BOUNCE))
    assert not isinstance(info.value, SinkUnavailable)


def test_session_rows_cover_every_event_type_and_money_exactly(store: PostgresStore) -> None:
    """Many purchases with cents that do not sum exactly in binary floating point."""
    events: list[Event] = [make_event("s-money", "page_view", at(0), path="/")]
    for i in range(1, 31):
        events.append(make_event("s-money", "purchase", at(i), path="/checkout", price="0.10", revenue="0.10"))
    (row,) = store.write(envelopes(events))
    assert row["revenue"] == Decimal("3.00") and row["purchases"] == 30
    assert metrics_of(row) == expected_sessions(events)["s-money"]
