"""Reading back what the pipeline wrote, and comparing it with the independent truth."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.simulation.dump import read_dump
from tests.support.sink_readers import document_count, documents, rows
from tests.support.truth import expected_buckets, expected_sessions, unique_events
from tests.support.world import IsolatedPipeline

VALID_KINDS = ("valid", "duplicate", "late")


def dumped(path: Path) -> tuple[list[str], list[bytes]]:
    """(values of messages carrying an event, values of malformed messages) from a --dump file."""
    events: list[str] = []
    malformed: list[bytes] = []
    for record in read_dump(path):
        if record.kind in VALID_KINDS:
            events.append(record.value.decode())
        else:
            assert record.kind.startswith("malformed:"), record.kind
            malformed.append(record.value)
    return events, malformed


def fetch(world: IsolatedPipeline, query: str) -> list[dict[str, Any]]:
    """The rows of ``query`` in the world's database."""
    return rows(world.settings, query)


def assert_postgres_matches(world: IsolatedPipeline, event_values: list[str]) -> dict[str, dict[str, Any]]:
    """events, sessions and both time-bucket views equal what the dump implies; returns the sessions."""
    events = unique_events(event_values)
    stored_ids = {str(r["event_id"]) for r in fetch(world, "SELECT event_id FROM events")}
    assert stored_ids == set(events), (
        f"{len(set(events) - stored_ids)} events missing, {len(stored_ids - set(events))} unexpected"
    )

    expected = expected_sessions(events.values())
    rows = {r["session_id"]: r for r in fetch(world, "SELECT * FROM sessions")}
    assert set(rows) == set(expected), f"{len(set(expected) ^ set(rows))} sessions differ in presence"
    mismatches = [
        (sid, key, want, rows[sid][key])
        for sid, exp in expected.items()
        for key, want in exp.items()
        if rows[sid][key] != want
    ]
    assert not mismatches, f"{len(mismatches)} session values differ, e.g. {mismatches[:5]}"

    for view, width in (("stats_per_minute", dt.timedelta(minutes=1)), ("stats_per_hour", dt.timedelta(hours=1))):
        want_buckets = expected_buckets(events.values(), expected.values(), width)
        got = {r["bucket"]: r for r in fetch(world, f"SELECT * FROM {view}")}
        assert set(got) == set(want_buckets), f"{view}: buckets differ"
        for bucket, want in want_buckets.items():
            for key, value in want.items():
                have = got[bucket][key]
                if isinstance(value, Decimal) and key.endswith("_rate"):
                    assert have is not None and abs(Decimal(have) - value) < Decimal("1e-9"), (view, bucket, key)
                else:
                    assert have == value, (view, bucket, key, value, have)
    return expected


def assert_opensearch_matches(
    world: IsolatedPipeline, event_ids: set[str], sessions: dict[str, dict[str, Any]]
) -> None:
    client = world.opensearch()
    events_alias = f"{world.index_prefix}-events"
    sessions_index = f"{world.index_prefix}-sessions"
    assert document_count(client, events_alias) == len(event_ids)
    assert document_count(client, sessions_index) == len(sessions)
    stored = {r["session_id"]: r for r in fetch(world, "SELECT * FROM sessions")}
    seen = 0
    for hit in documents(client, sessions_index).values():
        doc, row = hit["_source"], stored[hit["_id"]]
        assert hit["_version"] == row["version"], hit["_id"]
        for key in ("events", "page_views", "purchases", "landing_page", "exit_page", "is_bounce", "converted"):
            assert doc[key] == row[key], (hit["_id"], key)
        assert Decimal(str(doc["revenue"])) == row["revenue"]
        seen += 1
    assert seen == len(stored)
    found_ids = set(documents(client, events_alias))
    assert found_ids == event_ids


def assert_documents_equal_rows(world: IsolatedPipeline) -> None:
    """Every event document holds exactly its PostgreSQL row: the same copy of the event, the same coordinates."""
    stored = {str(r["event_id"]): r for r in fetch(world, "SELECT * FROM events")}
    found = documents(world.opensearch(), f"{world.index_prefix}-events")
    docs = {event_id: hit["_source"] for event_id, hit in found.items()}
    assert set(docs) == set(stored), f"{len(set(docs) ^ set(stored))} events in one store only"
    differ = []
    for event_id, row in stored.items():
        doc = docs[event_id]
        for column, value in row.items():
            if column in ("occurred_at", "ingested_at"):
                same = doc[column] == value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
            elif column in ("price", "revenue"):
                same = (None if doc[column] is None else Decimal(str(doc[column]))) == value
            elif column == "event_id":
                same = doc[column] == str(value)
            else:
                same = doc[column] == value
            if not same:
                differ.append((event_id, column, value, doc[column]))
    assert not differ, f"{len(differ)} values differ between the stores, e.g. {differ[:3]}"
