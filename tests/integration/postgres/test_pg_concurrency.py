"""Two writers on the same sessions (a rebalance overlap): the session rows must end exact.

The session merge reads each session's stored row and writes it back merged with the
batch's new events, so these tests attack exactly the window where a second writer could
read a row the first one is about to change.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pipeline.config.settings import Settings
from pipeline.contract.event import Event
from pipeline.sinks.postgres.store import PostgresStore
from tests.integration.postgres.session_events import DOCUMENT, at, envelopes, event_id, make_event, metrics_of
from tests.support.truth import expected_sessions


def paused_before_commit(store: PostgresStore, merged: threading.Event, release: threading.Event) -> None:
    """Make the store's next transactions stop after their last statement, before COMMIT."""
    conn = store._connection()  # noqa: SLF001 - the test needs the writer's own transaction
    original = conn.transaction

    @contextmanager
    def transaction() -> Iterator[Any]:
        with original() as tx:
            yield tx
            merged.set()
            assert release.wait(30), "the test never released the paused writer"

    conn.transaction = transaction  # type: ignore[method-assign]


@pytest.mark.parametrize("repeat_theirs", [False, True], ids=["disjoint", "repeating-an-uncommitted-event"])
def test_a_writer_waits_for_another_transaction_on_the_same_session(migrated_db: Settings, repeat_theirs: bool) -> None:
    """Deterministic: writer B has merged its events into s-1 but not committed yet; writer
    A must wait for it, and then merge on top of B's row: B's events counted once, A's added,
    A's earlier event taking over the attribution and the landing page.

    Disjoint batches: only the session lock makes A wait before reading the row. Repeating
    one of B's events: A's insert also waits on B's uncommitted key, and must not count it."""
    theirs = [
        make_event("s-1", "page_view", at(10), path="/b", referrer="https://b.example/", country="FI"),
        make_event("s-1", "purchase", at(20), path="/checkout", revenue="7.50"),
    ]
    ours = [
        make_event("s-1", "page_view", at(5), path="/a", referrer="https://a.example/", country="SE"),
        make_event("s-1", "page_view", at(30), path="/b?again=1"),
    ]
    merged, release = threading.Event(), threading.Event()
    results: dict[str, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def write(name: str, store: PostgresStore, events: list[Event]) -> None:
        try:
            results[name] = store.write(envelopes(events))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    with PostgresStore(migrated_db) as b, PostgresStore(migrated_db) as a:
        paused_before_commit(b, merged, release)
        writer_b = threading.Thread(target=write, args=("b", b, theirs))
        writer_b.start()
        assert merged.wait(30), "writer B never reached its commit"
        writer_a = threading.Thread(target=write, args=("a", a, [*ours, theirs[1]] if repeat_theirs else ours))
        writer_a.start()
        writer_a.join(1.5)
        assert writer_a.is_alive(), "write() did not wait for the other transaction on its session"
        release.set()
        writer_b.join(30)
        writer_a.join(30)
    assert errors == []
    (row_b,) = results["b"]
    (row_a,) = results["a"]
    assert metrics_of(row_b) == expected_sessions(theirs)["s-1"] and row_b["version"] == 1
    assert metrics_of(row_a) == expected_sessions([*theirs, *ours])["s-1"] and row_a["version"] == 2
    assert (row_a["landing_page"], row_a["referrer"], row_a["country"], row_a["unique_pages"]) == (
        "/a",
        "https://a.example/",
        "SE",
        2,
    )


def _interleaved_sessions(rng: random.Random, sessions: list[str], per_session: int) -> list[Event]:
    """Events whose attribution, landing and exit pages depend on which half a writer had."""
    events: list[Event] = []
    for sid in sessions:
        for i in range(per_session):
            kind = rng.choice(["page_view", "page_view", "click", "search", "add_to_cart", "purchase"])
            events.append(
                make_event(
                    sid,
                    kind,
                    at(rng.randrange(60)),  # few distinct timestamps: many ties, decided by event_id
                    eid=event_id(rng.getrandbits(64)),
                    path=f"/p/{rng.randrange(6)}",
                    referrer=rng.choice([None, f"https://ref-{i}.example/"]),
                    country=rng.choice(["DE", "FR", "FI"]),
                    device=rng.choice([("desktop", "Firefox", "Linux"), ("mobile", "Safari", "iOS")]),
                    price=f"{rng.randrange(1, 100)}.{rng.randrange(100):02d}",
                )
            )
    return events


def test_concurrent_writers_on_interleaved_halves_of_the_same_sessions_end_exact(migrated_db: Settings) -> None:
    rng = random.Random(23)
    sessions = [f"s-{i}" for i in range(12)]
    rounds, writers = 12, 2
    events = _interleaved_sessions(rng, sessions, per_session=2 * rounds)
    # writer w gets every other event of each session, shuffled (late and out of order), in
    # `rounds` batches; every batch also repeats two events of the other writer's half
    halves = [[e for i, e in enumerate(events) if i % writers == w] for w in range(writers)]
    for half in halves:
        rng.shuffle(half)
    batches: list[list[list[Event]]] = []
    for w in range(writers):
        size = -(-len(halves[w]) // rounds)
        own = [halves[w][r * size : (r + 1) * size] for r in range(rounds)]
        batches.append([batch + rng.sample(halves[1 - w], 2) for batch in own])
    barrier = threading.Barrier(writers)
    returned: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            with PostgresStore(migrated_db) as store:
                store._connection()  # noqa: SLF001 - connect before the race
                for r in range(rounds):
                    barrier.wait(30)
                    returned.extend(store.write(envelopes(batches[w][r], partition=w, first_offset=r * 100)))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []

    with psycopg.connect(migrated_db.postgres.conninfo("admin"), row_factory=dict_row) as conn:
        stored = {r["session_id"]: r for r in conn.execute("SELECT * FROM sessions").fetchall()}
        stored_events = conn.execute("SELECT count(*) AS n FROM events").fetchone()
    assert stored_events == {"n": len(events)}
    assert {sid: metrics_of(r) for sid, r in stored.items()} == expected_sessions(events)
    # Versions: every merge wrote the next version exactly once (none lost, none skipped),
    # and every write returned a row some merge wrote, never a mixture.
    by_version: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in returned:
        assert tuple(row) == DOCUMENT
        by_version[row["session_id"], row["version"]].append(row)
    for sid in sessions:
        versions = {v for (s, v) in by_version if s == sid}
        assert versions == set(range(1, stored[sid]["version"] + 1)), sid
        for v in versions:
            assert all(r == by_version[sid, v][0] for r in by_version[sid, v]), (sid, v)
        assert by_version[sid, stored[sid]["version"]][0]["updated_at"] == stored[sid]["updated_at"]
