"""The batch writer against the real PostgreSQL and OpenSearch: the two stores agree, whatever a batch holds.

Sinks stricter than the contract (a CHECK constraint, a narrower mapping) stand in for
whatever a future contract gap might let through: the writer must isolate exactly the
events a sink refuses, store everything else in both stores, and never leave an event in
one store only. Expected session rows come from ``tests.support.truth`` (plain Python).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from pipeline.contract.event import Event
from pipeline.errors import IndexingError, ServiceError
from pipeline.sinks.batch import SYSTEMIC_MIN_EVENTS, Envelope
from pipeline.sinks.opensearch.documents import encode_event_document
from pipeline.sinks.postgres.store import PostgresStore
from pipeline.sinks.writer import BatchWriter
from tests.integration.postgres.session_events import at, envelopes, make_event, metrics_of
from tests.integration.sinks.conftest import Sinks
from tests.support.truth import expected_sessions


def stored_ids(sinks: Sinks) -> set[str]:
    return {str(r["event_id"]) for r in sinks.rows("SELECT event_id FROM events")}


def indexed(sinks: Sinks) -> dict[str, dict[str, Any]]:
    return sinks.documents(sinks.names.events_alias)


def assert_stores_agree(sinks: Sinks, events: list[Event]) -> None:
    """Exactly ``events`` stored, each document equal to its row, sessions equal to the truth."""
    rows = {str(r["event_id"]): r for r in sinks.rows("SELECT * FROM events")}
    assert set(rows) == {e.event_id for e in events}
    docs = indexed(sinks)
    assert set(docs) == set(rows)
    for event_id, row in rows.items():
        source = docs[event_id]["_source"]
        assert source["ingested_at"][:19] == row["ingested_at"].strftime("%Y-%m-%dT%H:%M:%S")
        assert (source["kafka_partition"], source["kafka_offset"]) == (row["kafka_partition"], row["kafka_offset"])
        for column in ("event_type", "user_id", "session_id", "page_url", "country", "product_id"):
            assert source[column] == row[column], (event_id, column)
        for column in ("price", "revenue"):
            assert (None if source[column] is None else Decimal(str(source[column]))) == row[column]
    sessions = {r["session_id"]: r for r in sinks.rows("SELECT * FROM sessions")}
    assert {sid: metrics_of(r) for sid, r in sessions.items()} == expected_sessions(events)
    session_docs = sinks.documents(sinks.names.sessions_alias)
    assert {sid: d["_version"] for sid, d in session_docs.items()} == {s: r["version"] for s, r in sessions.items()}


def store(sinks: Sinks, batch: list[Envelope]) -> list[Any]:
    result = sinks.writer.store(batch)
    sinks.writer.index_sessions(result.sessions)
    return result.refused


def test_a_clean_batch_lands_in_both_stores(sinks: Sinks) -> None:
    events = [
        make_event("s-1", "page_view", at(0)),
        make_event("s-1", "purchase", at(5), revenue="12.30"),
        make_event("s-2", "search", at(9)),
    ]
    assert store(sinks, envelopes(events)) == []
    assert_stores_agree(sinks, events)


def test_events_postgresql_refuses_are_isolated_with_its_reason_and_the_rest_is_stored(sinks: Sinks) -> None:
    sinks.admin_sql("ALTER TABLE events ADD CONSTRAINT no_banned_user CHECK (user_id NOT LIKE 'banned%%')")
    good = [make_event(f"s-{i}", "page_view", at(i)) for i in range(40)]
    bad = [
        make_event("s-b", "click", at(3), user_id="banned-1"),
        make_event("s-c", "search", at(7), user_id="banned-2"),
    ]
    batch = envelopes([*good[:17], bad[0], *good[17:30], bad[1], *good[30:]])
    refused = store(sinks, batch)
    assert sorted(r.envelope.event.event_id for r in refused) == sorted(e.event_id for e in bad)
    for refusal in refused:
        assert refusal.reason.value == "refused_by_postgres"
        assert refusal.detail.startswith("23514 ") and "no_banned_user" in refusal.detail
    assert_stores_agree(sinks, good)


def test_events_opensearch_refuses_are_taken_back_from_postgresql(sinks: Sinks) -> None:
    sinks.stricter_opensearch({"product_id": {"type": "long"}})
    good = [make_event("s-1", "add_to_cart", at(1)), make_event("s-1", "page_view", at(2))]
    good = [msgspec.structs.replace(good[0], product_id="42"), good[1]]
    bad = make_event("s-1", "purchase", at(3), revenue="99.00")  # product_id "p-42" is no long
    refused = store(sinks, envelopes([good[0], bad, good[1]]))
    (refusal,) = refused
    assert refusal.envelope.event == bad and refusal.reason.value == "refused_by_opensearch"
    assert refusal.field == "product_id" and "mapper_parsing_exception" in refusal.detail
    assert_stores_agree(sinks, good)  # the purchase is in neither store, and not in its session


def test_a_database_that_refuses_every_event_alike_stops_the_batch_and_keeps_nothing(sinks: Sinks) -> None:
    sinks.admin_sql("ALTER TABLE events ADD CONSTRAINT nothing_goes CHECK (false) NOT VALID")
    with pytest.raises(ServiceError, match="refused all 12 events of a batch with the same error"):
        sinks.writer.store(envelopes([make_event("s-1", "page_view", at(i)) for i in range(12)]))
    assert stored_ids(sinks) == set() and indexed(sinks) == {}
    # a smaller batch refused alike is a few bad events, not proof of a broken database
    refused = store(sinks, envelopes([make_event("s-2", "page_view", at(i)) for i in range(SYSTEMIC_MIN_EVENTS - 1)]))
    assert len(refused) == SYSTEMIC_MIN_EVENTS - 1 and stored_ids(sinks) == set()


def test_an_index_that_refuses_every_event_alike_stops_the_batch_and_keeps_nothing(sinks: Sinks) -> None:
    sinks.stricter_opensearch({"user_id": {"type": "long"}})
    with pytest.raises(IndexingError, match="refused all 12 events of a batch with the same error"):
        sinks.writer.store(envelopes([make_event("s-1", "page_view", at(i)) for i in range(12)]))
    assert stored_ids(sinks) == set() and indexed(sinks) == {}


def test_replays_and_duplicates_write_no_event_document(sinks: Sinks) -> None:
    events = [make_event("s-1", "page_view", at(i)) for i in range(5)]
    batch = envelopes(events)
    store(sinks, batch)
    before = indexed(sinks)
    written = sinks.opensearch.stats.events
    result = sinks.writer.store([*batch, *envelopes(events[:2], first_offset=50)])
    sinks.writer.index_sessions(result.sessions)
    assert (result.stored, result.refused) == (0, [])
    assert sinks.opensearch.stats.events == written  # not one event document sent
    assert indexed(sinks) == before
    assert_stores_agree(sinks, events)


def test_the_first_stored_copy_wins_everywhere_and_a_different_copy_is_refused(sinks: Sinks) -> None:
    first = make_event("s-1", "purchase", at(1), revenue="10.00")
    other = msgspec.structs.replace(first, revenue=Decimal("99.00"), session_id="s-2")  # same event_id
    assert store(sinks, envelopes([first, first])) == []  # an identical copy in the batch: dropped silently
    (refusal,) = store(sinks, envelopes([other, first], first_offset=10))  # a later batch: only `other` differs
    assert refusal.envelope.event == other and refusal.reason.value == "conflicting_duplicate"
    assert refusal.field == "session_id" and first.event_id in refusal.detail
    a = make_event("s-3", "click", at(2))
    (within,) = store(sinks, envelopes([a, msgspec.structs.replace(a, country="FR")], first_offset=20))
    assert within.reason.value == "conflicting_duplicate" and within.field == "country"
    assert_stores_agree(sinks, [first, a])


def test_a_copy_written_to_opensearch_by_a_transaction_that_never_committed_is_overwritten_once(sinks: Sinks) -> None:
    """Two processes, two copies of one event on different partitions, the first dies half-way.

    Writer A inserts copy X, indexes it, and is killed before its commit (its connection
    ends). Writer B, waiting on the key, then inserts copy Y and indexes it with a higher
    version. A's write arriving late changes nothing; A's replay inserts nothing.
    """
    x = make_event("s-x", "page_view", at(1), path="/x")
    y = msgspec.structs.replace(x, page_url="https://shop.example.com/y", session_id="s-y", user_id="u-y")
    indexed_x, release = threading.Event(), threading.Event()
    late: list[bytes] = []

    def pause() -> None:
        indexed_x.set()
        assert release.wait(30)
        raise KeyboardInterrupt  # "killed" before the commit: the transaction rolls back

    a_store = PostgresStore(sinks.settings)
    writer_a = BatchWriter(a_store, sinks.opensearch, before_commit=pause)
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            writer_a.store([Envelope(x, 1, 7, at(100))])
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            a_store.close()

    thread = threading.Thread(target=run_a)
    thread.start()
    assert indexed_x.wait(30)
    assert indexed(sinks)[x.event_id]["_source"]["page_path"] == "/x"  # in OpenSearch, not committed
    late.append(encode_event_document(Envelope(x, 1, 7, at(100))))
    version_a = indexed(sinks)[x.event_id]["_version"]

    b_result: list[Any] = []
    writer_b = threading.Thread(target=lambda: b_result.append(sinks.writer.store([Envelope(y, 4, 9, at(200))])))
    writer_b.start()
    writer_b.join(1.5)
    assert writer_b.is_alive(), "B did not wait for A's uncommitted copy"
    release.set()
    thread.join(30)
    writer_b.join(30)
    assert [type(e) for e in errors] == [KeyboardInterrupt]
    sinks.writer.index_sessions(b_result[0].sessions)

    # A's write reaching OpenSearch only now (it was in flight when A died) is refused as older.
    index = sinks.names.events_index(x.occurred_at)
    answer = sinks.admin.index(
        index=index, id=x.event_id, body=late[0], version=version_a, version_type="external", params={"ignore": 409}
    )
    assert answer.get("status") == 409 or answer.get("error", {}).get("type") == "version_conflict_engine_exception"
    assert indexed(sinks)[x.event_id]["_source"]["page_path"] == "/y"

    # A's replay: its copy differs from the stored one, so it is a conflicting duplicate, and nothing is written.
    replay = sinks.writer.store([Envelope(x, 1, 7, at(300))])
    assert [r.reason.value for r in replay.refused] == ["conflicting_duplicate"] and replay.stored == 0
    sinks.writer.index_sessions(replay.sessions)
    assert_stores_agree(sinks, [y])


def test_a_later_copy_of_a_refused_event_gets_its_own_turn(sinks: Sinks) -> None:
    sinks.admin_sql("ALTER TABLE events ADD CONSTRAINT no_banned_user CHECK (user_id NOT LIKE 'banned%%')")
    bad = make_event("s-1", "page_view", at(1), user_id="banned-1")
    twin = bad  # an identical copy is refused alike
    fixed = msgspec.structs.replace(bad, user_id="u-1")  # a different copy may be stored
    refused = store(sinks, envelopes([bad, twin, fixed, make_event("s-2", "click", at(2))]))
    assert [r.envelope.offset for r in refused] == [0, 1]
    assert stored_ids(sinks) >= {fixed.event_id}
    assert sinks.rows("SELECT user_id FROM events WHERE event_id = %s", fixed.event_id)[0]["user_id"] == "u-1"


def test_a_value_the_driver_cannot_send_is_refused_by_postgresql_not_fatal(sinks: Sinks) -> None:
    """Values the contract forbids, forced past it, stand for whatever a contract gap could let through."""
    good = make_event("s-1", "page_view", at(1))
    unsendable = [
        msgspec.structs.replace(make_event("s-2", "purchase", at(2)), revenue=Decimal("0E-999999")),
        msgspec.structs.replace(make_event("s-3", "purchase", at(3)), price=Decimal("1E+20")),
        msgspec.structs.replace(make_event("s-4", "search", at(4)), search_query="nul \x00 inside"),
    ]
    refused = store(sinks, envelopes([good, *unsendable]))
    assert sorted(r.envelope.event.session_id for r in refused) == ["s-2", "s-3", "s-4"]
    assert all(r.reason.value == "refused_by_postgres" for r in refused)
    assert_stores_agree(sinks, [good])
