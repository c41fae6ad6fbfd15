"""What PostgreSQL does for one batch of the sink, statement by statement.

Loads ``--history`` events through ``PostgresStore.write`` (the shape of
``benchmarks/bench_postgres_store.py``: thousands of interleaved sessions in flight), lets
the server analyze the tables as autovacuum would have by then, and then runs the steps
of one more ``--batch``-event batch by hand, in the sink's order, inside a transaction
that is rolled back: the COPY into the staging table (timed; COPY cannot be EXPLAINed),
then ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` of the INSERT into ``events``, the advisory
locks and the session merge. It also prints every index of ``events`` and ``sessions``
with how often the load scanned it, and how many of the sessions' updates were HOT.

Why a rolled-back transaction: EXPLAIN ANALYZE really runs a statement, and the database
is left as the load made it. The plans show where a batch's time goes; whether a change
pays is measured by ``bench_postgres_store.py`` (figures in docs/decisions.md)::

    .venv/bin/python -m benchmarks.explain_postgres_batch
    .venv/bin/python -m benchmarks.explain_postgres_batch --history 200000 --batch 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.bench_postgres_store import live_events
from pipeline.analytics.summary import _HOURLY, _KPIS, _TOP_VALUES, window
from pipeline.config.settings import find_local_outputs, load_settings
from pipeline.sinks.batch import Envelope
from pipeline.sinks.postgres.metrics import metrics_sql
from pipeline.sinks.postgres.migrate import apply_migrations
from pipeline.sinks.postgres.store import (
    INSERT_EVENTS,
    LOCK_SESSIONS,
    NEXT_DOCUMENT_VERSION,
    SAVEPOINT,
    EventTransaction,
    PostgresStore,
    WriteTimings,
    _staging_rows,
    session_lock_key,
)
from tests.support.postgres_db import temporary_database

EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING ON) "

INDEX_USE = """
SELECT s.relname, s.indexrelname, i.indisunique, pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
       s.idx_scan, s.idx_tup_read
FROM pg_stat_user_indexes AS s JOIN pg_index AS i ON i.indexrelid = s.indexrelid
WHERE s.relname IN ('events', 'sessions')
ORDER BY s.relname, s.indexrelname
"""
TABLE_USE = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_size_pretty(pg_table_size(relid)) AS size
FROM pg_stat_user_tables WHERE relname IN ('events', 'sessions') ORDER BY relname
"""


def show(title: str, rows: list[tuple[Any, ...]]) -> None:
    print(f"\n== {title}")
    for row in rows:
        print("  " + " | ".join(str(v) for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=200_000, help="events stored before the explained batch")
    parser.add_argument("--batch", type=int, default=5_000, help="events in the explained batch")
    parser.add_argument("--load-batch", type=int, default=5_000, help="batch size of the load")
    parser.add_argument("--concurrent", type=int, default=20_000, help="sessions in flight at once")
    parser.add_argument("--session-events", type=int, default=12, help="mean events per session")
    parser.add_argument("--reads", action="store_true", help="also EXPLAIN the pipeline's own reads")
    parser.add_argument("--read-hours", type=int, default=1, help="the summary window of --reads")
    parser.add_argument("--outputs", type=Path, default=None, help="stack-outputs file (default: the local stack's)")
    args = parser.parse_args()
    settings = load_settings(outputs_file=args.outputs or find_local_outputs())

    events = live_events(args.history + args.batch, concurrent=args.concurrent, mean_length=args.session_events)
    ingested = dt.datetime.now(dt.UTC)
    envelopes = [Envelope(e, i % 6, i, ingested) for i, e in enumerate(events)]
    history, batch = envelopes[: args.history], envelopes[args.history :]

    with temporary_database(settings) as db:
        apply_migrations(db)
        with PostgresStore(db) as store:
            mark = time.perf_counter()
            for start in range(0, len(history), args.load_batch):
                store.write(history[start : start + args.load_batch])
            print(f"loaded {len(history):,} events in {time.perf_counter() - mark:.1f} s")
            with psycopg.connect(db.postgres.conninfo("admin"), autocommit=True) as admin:
                admin.execute("ANALYZE events, sessions")
                show(
                    "indexes after the load (relation | index | unique | size | scans | entries read)",
                    admin.execute(INDEX_USE).fetchall(),
                )
                show(
                    "tables after the load (relation | inserted | updated | HOT-updated | size)",
                    admin.execute(TABLE_USE).fetchall(),
                )

            conn = store._connection()
            sessions = sorted({e.event.session_id for e in batch})
            keys = sorted({session_lock_key(s) for s in sessions})
            known = conn.execute("SELECT count(*) FROM sessions WHERE session_id = ANY(%s)", [sessions]).fetchone()
            print(
                f"\nthe batch: {len(batch):,} events, {len(sessions):,} sessions ({known[0] if known else 0:,} stored)"
            )
            with conn.transaction(force_rollback=True):
                conn.execute(SAVEPOINT)
                tx = EventTransaction(conn, store._column_types, "binary", WriteTimings())
                rows = _staging_rows(batch)
                mark = time.perf_counter()
                tx._copy(rows)
                print(
                    f"\n== COPY {len(rows):,} rows into the staging table: {1e3 * (time.perf_counter() - mark):.1f} ms"
                )
                show(
                    "INSERT INTO events ... RETURNING -> events_new",
                    conn.execute(EXPLAIN + INSERT_EVENTS.as_string(conn)).fetchall(),
                )
                conn.execute(NEXT_DOCUMENT_VERSION)
                show("advisory locks", conn.execute(EXPLAIN + LOCK_SESSIONS, [keys]).fetchall())
                show(
                    "session merge (metrics.sql)",
                    conn.execute(EXPLAIN + metrics_sql(), {"session_ids": sessions}).fetchall(),
                )
            print(f"\none round trip of a trivial statement (median of 500): {1e3 * round_trip(conn):.3f} ms")
            if args.reads:
                explain_reads(conn, args.read_hours)


def round_trip(conn: psycopg.Connection[Any]) -> float:
    """Seconds of one ``SELECT 1``: what each statement of a batch costs besides its own work."""
    times = []
    for _ in range(500):
        mark = time.perf_counter()
        conn.execute("SELECT 1")
        times.append(time.perf_counter() - mark)
    return statistics.median(times)


def explain_reads(conn: psycopg.Connection[Any], hours: int) -> None:
    """The pipeline's own reads of the two tables: which indexes do they use?"""
    row = conn.execute("SELECT max(started_at) FROM sessions").fetchone()
    until = row[0] if row else dt.datetime.now(dt.UTC)
    since, last_bucket = window(hours, until)
    params = {"since": since, "until": until, "last_bucket": last_bucket, "limit": 10}
    reads = {
        "pipeline status: newest event": "SELECT max(occurred_at) FROM events",
        f"pipeline summary ({hours} h): KPIs": _KPIS,
        f"pipeline summary ({hours} h): top landing pages": _TOP_VALUES.format(column="landing_page"),
        f"pipeline summary ({hours} h): hourly (stats_per_hour)": _HOURLY,
        "top_pages view": "SELECT * FROM top_pages",
    }
    for title, query in reads.items():
        plan = conn.execute(EXPLAIN + query, params if "%(" in query else None).fetchall()
        show(title, plan)


if __name__ == "__main__":
    main()
