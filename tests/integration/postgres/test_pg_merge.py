"""The incremental session merge, attacked where merging differs from recomputing.

Each batch merges only its NEW events into the stored session row, so every test here
spreads one session over several batches in the order that is hardest for a merge: the
earliest event last, ties in occurred_at split across batches, a page path repeated in a
later batch, duplicates of older batches. The expected rows always come from
tests/support/truth.py (plain Python over all events written so far), never from SQL.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from pipeline.config.settings import Settings
from pipeline.contract.event import Event
from pipeline.sinks.opensearch.mappings import SESSION_PROPERTIES
from pipeline.sinks.postgres.store import PostgresStore
from tests.integration.postgres.session_events import (
    DOCUMENT,
    at,
    document_of,
    envelopes,
    event_id,
    make_event,
    metrics_of,
)
from tests.support.truth import expected_sessions


class Writer:
    """Writes batches and checks every returned row against the truth of all events so far."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.seen: list[Event] = []
        self.offset = 0

    def write(self, events: Sequence[Event]) -> dict[str, dict[str, Any]]:
        rows = self.store.write(envelopes(events, first_offset=self.offset))
        self.offset += len(events)
        self.seen.extend(events)
        truth = expected_sessions(self.seen)
        assert [r["session_id"] for r in rows] == sorted({e.session_id for e in events})
        for row in rows:
            assert tuple(row) == DOCUMENT
            assert metrics_of(row) == truth[row["session_id"]], row["session_id"]
        return {row["session_id"]: row for row in rows}


def stored_sessions(db: Settings) -> dict[str, dict[str, Any]]:
    with psycopg.connect(db.postgres.conninfo("admin"), row_factory=dict_row) as conn:
        return {r["session_id"]: r for r in conn.execute("SELECT * FROM sessions").fetchall()}


def test_the_returned_row_is_exactly_the_session_document(store: PostgresStore) -> None:
    """The OpenSearch session mapping is strict: a merge-state column in the row would fail indexing."""
    (row,) = store.write(envelopes([make_event("s-doc", "page_view", at(0))]))
    assert list(row) == list(DOCUMENT)
    assert sorted(row) == sorted(SESSION_PROPERTIES)


def test_a_late_event_earlier_than_the_stored_earliest_takes_over_attribution_and_landing(store: PostgresStore) -> None:
    w = Writer(store)
    later = [
        make_event(
            "s",
            "page_view",
            at(100),
            path="/second",
            user_id="u-later",
            referrer="https://later.example/",
            utm=("later", "cpc", "b"),
            device=("mobile", "Safari", "iOS"),
            country="FR",
        ),
        make_event("s", "click", at(101), path="/second"),
    ]
    w.write(later)
    earliest = make_event(
        "s",
        "page_view",
        at(40),
        path="/first",
        user_id="u-first",
        referrer=None,
        utm=("first", "email", "a"),
        device=("tablet", "Chrome", "Android"),
        country="FI",
    )
    row = w.write([earliest])["s"]
    assert (row["started_at"], row["landing_page"], row["exit_page"]) == (at(40), "/first", "/second")
    assert (row["user_id"], row["referrer"], row["utm_source"], row["device_type"], row["country"]) == (
        "u-first",
        None,
        "first",
        "tablet",
        "FI",
    )
    assert row["duration_s"] == 61 and row["version"] == 2
    # a late event that is NOT earlier changes neither
    row = w.write([make_event("s", "search", at(50), user_id="u-middle", country="DE")])["s"]
    assert (row["user_id"], row["country"], row["landing_page"]) == ("u-first", "FI", "/first")


def test_a_late_non_page_view_moves_the_start_but_not_the_landing_page(store: PostgresStore) -> None:
    w = Writer(store)
    w.write([make_event("s", "page_view", at(10), path="/a"), make_event("s", "page_view", at(20), path="/b")])
    row = w.write([make_event("s", "search", at(0), country="NL")])["s"]
    assert (row["started_at"], row["country"], row["landing_page"], row["exit_page"]) == (at(0), "NL", "/a", "/b")
    # and a late page view between the stored ones moves neither landing nor exit
    row = w.write([make_event("s", "page_view", at(15), path="/middle")])["s"]
    assert (row["landing_page"], row["exit_page"], row["unique_pages"]) == ("/a", "/b", 3)


def test_ties_in_occurred_at_are_decided_by_event_id_across_batches(store: PostgresStore) -> None:
    w = Writer(store)
    w.write(
        [
            make_event("s", "page_view", at(0), eid=event_id(20), path="/tie-20", country="DE"),
            make_event("s", "page_view", at(9), eid=event_id(50), path="/exit-50"),
        ]
    )
    # same occurred_at, smaller id: becomes the earliest event and the landing page
    row = w.write([make_event("s", "page_view", at(0), eid=event_id(10), path="/tie-10", country="FI")])["s"]
    assert (row["landing_page"], row["country"]) == ("/tie-10", "FI")
    # same occurred_at, larger id than the new earliest: changes nothing of it
    row = w.write([make_event("s", "click", at(0), eid=event_id(15), country="FR")])["s"]
    assert (row["landing_page"], row["country"]) == ("/tie-10", "FI")
    # at the exit's timestamp: a larger id becomes the exit page, a smaller one does not
    row = w.write([make_event("s", "page_view", at(9), eid=event_id(60), path="/exit-60")])["s"]
    assert row["exit_page"] == "/exit-60"
    row = w.write([make_event("s", "page_view", at(9), eid=event_id(55), path="/exit-55")])["s"]
    assert (row["exit_page"], row["page_views"], row["unique_pages"]) == ("/exit-60", 5, 5)


def test_a_session_without_page_views_gets_its_first_ones_later(store: PostgresStore) -> None:
    w = Writer(store)
    row = w.write([make_event("s", "search", at(0)), make_event("s", "click", at(3))])["s"]
    assert (row["landing_page"], row["exit_page"], row["unique_pages"], row["is_bounce"]) == (None, None, 0, True)
    row = w.write([make_event("s", "page_view", at(5), path="/x")])["s"]
    assert (row["landing_page"], row["exit_page"], row["unique_pages"], row["is_bounce"]) == ("/x", "/x", 1, True)
    row = w.write([make_event("s", "page_view", at(1), path="/y")])["s"]  # late, before /x
    assert (row["landing_page"], row["exit_page"], row["unique_pages"], row["is_bounce"]) == ("/y", "/x", 2, False)


def test_a_path_seen_in_two_batches_counts_once(store: PostgresStore) -> None:
    w = Writer(store)
    w.write([make_event("s", "page_view", at(0), path="/a"), make_event("s", "page_view", at(1), path="/b")])
    # /a again (with a query string, the same path), a click on /c (not a page view), and /c viewed
    row = w.write([make_event("s", "page_view", at(2), path="/a?utm=x"), make_event("s", "click", at(3), path="/c")])[
        "s"
    ]
    assert (row["page_views"], row["unique_pages"]) == (3, 2)
    row = w.write([make_event("s", "page_view", at(4), path="/c"), make_event("s", "page_view", at(5), path="/b#top")])[
        "s"
    ]
    assert (row["page_views"], row["unique_pages"], row["exit_page"]) == (5, 3, "/b")


def test_duplicates_across_batches_count_once(store: PostgresStore, migrated_db: Settings) -> None:
    w = Writer(store)
    view = make_event("s", "page_view", at(0), path="/a")
    buy = make_event("s", "purchase", at(4), path="/checkout", price="12.34", revenue="12.34")
    first = w.write([view, buy])["s"]
    # the purchase again, next to a new event: revenue and counts must not double
    row = w.write([buy, make_event("s", "click", at(6)), view])["s"]
    assert (row["events"], row["purchases"], row["revenue"], row["version"]) == (3, 1, first["revenue"], 2)
    # only known events: nothing changes, and the row is still returned as it is
    before = stored_sessions(migrated_db)
    again = w.write([buy, view, buy])["s"]
    assert again == row
    assert stored_sessions(migrated_db) == before


def test_only_sessions_with_new_events_get_a_new_version(store: PostgresStore) -> None:
    w = Writer(store)
    a, b = make_event("a", "page_view", at(0)), make_event("b", "page_view", at(0))
    first = w.write([a, b])
    second = w.write([a, b, make_event("b", "click", at(1))])
    assert second["a"] == first["a"]
    assert second["b"]["version"] == 2 and second["b"]["updated_at"] >= first["b"]["updated_at"]


def test_a_session_written_in_one_batch_or_in_many_is_the_same(store: PostgresStore, migrated_db: Settings) -> None:
    """The derived columns at their thresholds: built at once and built event by event agree."""
    cases = {
        "ten-seconds": [make_event("x", "click", at(0)), make_event("x", "search", at(10))],
        "two-views": [make_event("x", "page_view", at(0), path="/"), make_event("x", "page_view", at(1), path="/")],
        "converted": [make_event("x", "purchase", at(0), price="0.01"), make_event("x", "click", at(9.999))],
        "bounce": [make_event("x", "page_view", at(0)), make_event("x", "click", at(9.999))],
    }
    for name, events in cases.items():
        whole = [msgspec.structs.replace(e, session_id=f"{name}-whole", event_id=str(uuid.uuid4())) for e in events]
        parts = [msgspec.structs.replace(e, session_id=f"{name}-parts", event_id=str(uuid.uuid4())) for e in events]
        store.write(envelopes(whole))
        for e in reversed(parts):
            store.write(envelopes([e]))
    stored = stored_sessions(migrated_db)
    for name in cases:
        whole, parts = metrics_of(stored[f"{name}-whole"]), metrics_of(stored[f"{name}-parts"])
        assert {**whole, "session_id": None} == {**parts, "session_id": None}, name
    assert [stored[f"{n}-parts"]["is_engaged"] for n in cases] == [True, True, True, False]


def test_random_batches_match_a_recomputation_after_every_batch(store: PostgresStore, migrated_db: Settings) -> None:
    """Many sessions, few distinct timestamps (ties everywhere), attributes that differ per
    event, events written in random batches, out of order, with duplicates within and
    across batches; after every batch each returned row equals the truth of everything
    written so far, and a session's version counts the batches that brought it new events."""
    rng = random.Random(7)
    sessions = [f"r-{i}" for i in range(40)]
    events: list[Event] = []
    for n in range(1200):
        sid = rng.choice(sessions)
        kind = rng.choice(["page_view", "page_view", "page_view", "click", "search", "add_to_cart", "purchase"])
        events.append(
            make_event(
                sid,
                kind,
                at(rng.randrange(30) * 0.5),
                eid=event_id(rng.getrandbits(48) * 4096 + n),
                path=rng.choice(["/", "/a", "/b", "/c?q=1", "/a/b", "/d#x"]),
                user_id=f"u-{rng.randrange(3)}",
                referrer=rng.choice([None, "https://r.example/"]),
                utm=rng.choice([(None, None, None), ("s", "m", "c")]),
                device=rng.choice([("desktop", "Firefox", "Linux"), ("mobile", "Safari", "iOS")]),
                country=rng.choice(["DE", "FI"]),
                price=f"{rng.randrange(1, 500)}.{rng.randrange(100):02d}",
            )
        )
    rng.shuffle(events)
    w = Writer(store)
    versions: dict[str, int] = {}
    written: set[str] = set()
    position = 0
    while position < len(events):
        size = rng.choice([1, 3, 20, 80, 200])
        batch = events[position : position + size]
        position += size
        batch += rng.sample(events[:position], min(len(events[:position]), rng.choice([0, 2, 10])))  # replays
        batch += rng.sample(batch, min(len(batch), 3))  # in-batch duplicates
        rng.shuffle(batch)
        new_sessions = {e.session_id for e in batch if e.event_id not in written}
        written |= {e.event_id for e in batch}
        rows = w.write(batch)
        for sid, row in rows.items():
            versions[sid] = versions.get(sid, 0) + (sid in new_sessions)
            assert row["version"] == versions[sid], sid
    stored = stored_sessions(migrated_db)
    assert {sid: document_of(r) for sid, r in stored.items()} == {
        sid: {**truth, "version": versions[sid], "updated_at": stored[sid]["updated_at"]}
        for sid, truth in expected_sessions(events).items()
    }
