"""The reporting views on a small hand-made dataset, checked against plain-Python counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pipeline.config.settings import Settings
from pipeline.contract.event import Event
from pipeline.sinks.postgres.store import PostgresStore
from tests.integration.postgres.session_events import at, envelopes, make_event
from tests.support.truth import expected_sessions, path_of

# Three sessions in the first minutes (one user has two of them), one an hour later that
# runs over into the next hour, so buckets hold sessions without events of their own and
# events without sessions starting in them.
DATASET: list[Event] = [
    # s-a (user u-a): converts; spans minutes 0 and 1
    make_event("s-a", "page_view", at(10), path="/", user_id="u-a", referrer="https://www.google.com/"),
    make_event("s-a", "page_view", at(50), path="/p/1", user_id="u-a"),
    make_event("s-a", "add_to_cart", at(65), path="/p/1", user_id="u-a", price="25.00"),
    make_event("s-a", "purchase", at(90), path="/checkout", user_id="u-a", price="25.00", revenue="50.00"),
    # s-b (user u-b): a bounce in minute 0
    make_event("s-b", "page_view", at(20), path="/p/1", user_id="u-b"),
    # s-c (user u-a again): starts in minute 1, engaged by two page views, ends in minute 2
    make_event("s-c", "page_view", at(100), path="/", user_id="u-a"),
    make_event("s-c", "search", at(105), path="/", user_id="u-a"),
    make_event("s-c", "page_view", at(130), path="/search?q=shoes", user_id="u-a"),
    # s-d (user u-c): hour 10, converts twice, last page view in hour 11
    make_event("s-d", "page_view", at(4500), path="/p/2", user_id="u-c"),
    make_event("s-d", "purchase", at(4520), path="/checkout", user_id="u-c", price="20.00", revenue="20.00"),
    make_event("s-d", "purchase", at(4530), path="/checkout", user_id="u-c", price="0.50", revenue="0.50"),
    make_event("s-d", "page_view", at(7205), path="/p/2", user_id="u-c"),
]


def expected_stats(events: list[Event], width: dt.timedelta) -> dict[dt.datetime, dict[str, Any]]:
    def bucket(t: dt.datetime) -> dt.datetime:
        return t - ((t - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) % width)

    out: dict[dt.datetime, dict[str, Any]] = defaultdict(
        lambda: {
            "sessions_started": 0,
            "users": set(),
            "page_views": 0,
            "bounces": 0,
            "engaged": 0,
            "converted": 0,
            "revenue": Decimal(0),
        }
    )
    for s in expected_sessions(events).values():
        b = out[bucket(s["started_at"])]
        b["sessions_started"] += 1
        b["bounces"] += s["is_bounce"]
        b["engaged"] += s["is_engaged"]
        b["converted"] += s["converted"]
    for e in events:
        b = out[bucket(e.occurred_at)]
        b["users"].add(e.user_id)
        b["page_views"] += e.event_type == "page_view"
        if e.event_type == "purchase":
            assert e.revenue is not None
            b["revenue"] += e.revenue

    def rate(n: int, d: int) -> Decimal | None:
        return Decimal(n) / Decimal(d) if d else None

    return {
        k: {
            "sessions_started": v["sessions_started"],
            "active_users": len(v["users"]),
            "page_views": v["page_views"],
            "bounce_rate": rate(v["bounces"], v["sessions_started"]),
            "engagement_rate": rate(v["engaged"], v["sessions_started"]),
            "conversion_rate": rate(v["converted"], v["sessions_started"]),
            "revenue": v["revenue"],
        }
        for k, v in out.items()
    }


def close(a: Decimal | None, b: Decimal | None) -> bool:
    return a is None and b is None or (a is not None and b is not None and abs(a - b) < Decimal("1e-15"))


def read_view(db: Settings, query: str) -> list[dict[str, Any]]:
    """Through the application role: its SELECT grants must be enough."""
    with psycopg.connect(db.postgres.conninfo("app"), row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


@pytest.fixture
def loaded(store: PostgresStore, migrated_db: Settings) -> Settings:
    store.write(envelopes(DATASET[5:]))  # out of order, two batches
    store.write(envelopes(DATASET[:5], first_offset=100))
    return migrated_db


@pytest.mark.parametrize(
    ("view", "width"), [("stats_per_minute", dt.timedelta(minutes=1)), ("stats_per_hour", dt.timedelta(hours=1))]
)
def test_time_bucket_views(loaded: Settings, view: str, width: dt.timedelta) -> None:
    rows = read_view(loaded, f"SELECT * FROM {view} ORDER BY bucket")  # noqa: S608 - fixed names
    expected = expected_stats(DATASET, width)
    assert [r["bucket"] for r in rows] == sorted(expected)
    for row in rows:
        want = expected[row["bucket"]]
        for column in ("sessions_started", "active_users", "page_views", "revenue"):
            assert row[column] == want[column], (row["bucket"], column)
        for column in ("bounce_rate", "engagement_rate", "conversion_rate"):
            assert close(row[column], want[column]), (row["bucket"], column, row[column], want[column])


def test_the_hour_view_in_numbers(loaded: Settings) -> None:
    """The same expectation written out by hand, so the helper above cannot fool us."""
    rows = {r["bucket"].hour: r for r in read_view(loaded, "SELECT * FROM stats_per_hour")}
    assert sorted(rows) == [9, 10, 11]
    nine, ten, eleven = rows[9], rows[10], rows[11]
    assert (nine["sessions_started"], nine["active_users"], nine["page_views"], nine["revenue"]) == (3, 2, 5, 50)
    assert close(nine["bounce_rate"], Decimal(1) / 3) and close(nine["conversion_rate"], Decimal(1) / 3)
    assert close(nine["engagement_rate"], Decimal(2) / 3)
    assert (ten["sessions_started"], ten["active_users"], ten["page_views"], ten["revenue"]) == (
        1,
        1,
        1,
        Decimal("20.50"),
    )
    assert ten["bounce_rate"] == 0 and ten["conversion_rate"] == 1
    assert (eleven["sessions_started"], eleven["active_users"], eleven["page_views"], eleven["revenue"]) == (0, 1, 1, 0)
    assert eleven["bounce_rate"] is None and eleven["engagement_rate"] is None and eleven["conversion_rate"] is None


def test_top_pages(loaded: Settings) -> None:
    rows = {r["page_path"]: r for r in read_view(loaded, "SELECT * FROM top_pages")}
    sessions = expected_sessions(DATASET).values()
    views: dict[str, list[str]] = defaultdict(list)
    for e in DATASET:
        if e.event_type == "page_view":
            views[path_of(e.page_url)].append(e.session_id)
    expected = {
        path: {
            "page_path": path,
            "page_views": len(ids),
            "unique_sessions": len(set(ids)),
            "landings": sum(1 for s in sessions if s["landing_page"] == path),
            "exits": sum(1 for s in sessions if s["exit_page"] == path),
        }
        for path, ids in views.items()
    }
    assert rows == expected
    # s-a lands on / and leaves from /p/1 (its checkout is a purchase, not a page view); s-b is only /p/1
    assert rows["/p/1"] == {"page_path": "/p/1", "page_views": 2, "unique_sessions": 2, "landings": 1, "exits": 2}


def test_a_filter_on_the_bucket_reaches_the_tables(loaded: Settings) -> None:
    """The bucket function is inlined, so a bucket filter is applied before aggregating."""
    plan = "\n".join(
        r["QUERY PLAN"]
        for r in read_view(loaded, "EXPLAIN SELECT * FROM stats_per_hour WHERE bucket >= '2026-11-30 10:00+00'")
    )
    assert "Function Scan" not in plan
    assert "date_bin" in plan or "time_bucket" in plan
