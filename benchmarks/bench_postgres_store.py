"""How fast does the PostgreSQL sink store events and keep their sessions current?

Writes N synthetic events through ``PostgresStore.write`` in batches of a few sizes and
prints events per second for each, with the split of the time between building the rows
in Python, the advisory locks, COPY into the staging table, ``INSERT ... SELECT`` into
``events`` (collecting the new ones in ``events_new``) and the session merge
(``pipeline/sessions/metrics.sql``, which also reads back the batch's session rows), plus
the commit.

Why synthetic events with a live-traffic shape instead of ``pipeline.simulation``:
the generator's realistic walk costs more CPU than the sink itself, and what decides the
sink's speed is the shape of a batch: how many sessions it touches and how many earlier
events each of them already has. So the events here come from ``--concurrent`` sessions
in flight at once, each ``--session-events`` long on average, interleaved at random like
a busy shop: a 5,000-event batch then touches thousands of sessions that each have
history.

Variants (``--variants``), all on the same events in the same run, so machine load hits
them alike:

* ``incremental``: the sink as it is (merges only each batch's new events).
* ``sessionidx``: the same plus the old covering index on events (session_id, occurred_at,
  event_id) that only the recompute needed (what that index costs on insert).
* ``recompute``: the previous design, kept here only as a baseline: the session upsert
  recomputed every touched session from ALL its stored events (``RECOMPUTE_SQL``, a copy
  of the old ``metrics.sql``), on the old schema (that index, no merge-state columns).

Measured on the 2-core development machine (load average 1.7-2.5 from other work; two
interleaved runs each; binary COPY; 200,000 events):

* default shape (20,000 concurrent sessions of ~12 events): incremental 14.5-15.0k / 18.5-21.3k
  / 22.7-24.3k events/s at batches of 1k / 5k / 20k, recompute 11.1-11.9k / 14.3-16.3k /
  20.4-20.6k in the same runs; PostgreSQL backend CPU per event 42-48 / 32-37 / 32-34 us
  against 58-65 / 44-51 / 40 us. About half of the gain is the merge, half the dropped
  covering index (``sessionidx``).
* long sessions (2,000 concurrent sessions of ~40 events, so a batch's sessions have long
  histories): incremental 16.6-18.9k / 24.3-25.6k events/s at 1k / 5k, recompute 8.9-10.0k /
  15.9-16.4k; backend CPU per event 35-36 / 27-31 us against 77-78 / 48-55 us.

In every run the session merge is still the largest step (40-50% of the wall time), but it
no longer grows with a session's history: its cost is rewriting each touched session's row
(about 10 us a row on this machine, HOT updates included), so larger batches, which touch
fewer sessions per event, are cheaper per event.

Each variant of each (format, batch size) run gets a fresh database of its own (created
and dropped with the admin role, migrated, written with the application role), so runs
do not disturb each other or anyone else's data; the variants are written batch by batch
in turn, so load from other work on the machine hits them alike. Run against the local
stack (``devstack up``)::

    .venv/bin/python -m benchmarks.bench_postgres_store
    .venv/bin/python -m benchmarks.bench_postgres_store --variants incremental,sessionidx,recompute --repeat 2
    .venv/bin/python -m benchmarks.bench_postgres_store --events 400000 --batch-sizes 5000 --formats binary,text
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pipeline.config.settings import Settings, find_local_outputs, load_settings
from pipeline.contract.event import Event
from pipeline.sinks.batch import Envelope, SessionRow
from pipeline.sinks.postgres.migrate import apply_migrations
from pipeline.sinks.postgres.store import (
    COLUMNS,
    LOCK_SESSIONS,
    STAGING_TABLE,
    CopyFormat,
    PostgresStore,
    WriteTimings,
    _since,
    _staging_rows,
    session_lock_key,
)
from tests.support.postgres_db import temporary_database

UTC = dt.UTC
PAGES = ["/", "/search", "/cart", "/checkout"] + [f"/c/{c}" for c in range(20)] + [f"/p/p-{p}" for p in range(500)]
REFERRERS = [None, "https://www.google.com/", "https://news.example.org/a/1", "android-app://com.example.social"]


@dataclass
class _Session:
    session_id: str
    user_id: str
    remaining: int
    device: tuple[str, str, str]
    country: str
    referrer: str | None
    at: dt.datetime


def live_events(n: int, *, concurrent: int, mean_length: int, seed: int = 11) -> list[Event]:
    """``n`` valid events from ``concurrent`` interleaved sessions of ~``mean_length`` events."""
    rng = random.Random(seed)
    start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    devices = [
        ("desktop", "Chrome", "Windows"),
        ("mobile", "Safari", "iOS"),
        ("mobile", "Chrome", "Android"),
        ("tablet", "Safari", "iPadOS"),
    ]

    def new_session() -> _Session:
        return _Session(
            session_id=f"s-{rng.getrandbits(64):016x}",
            user_id=f"u-{rng.randrange(200_000):06d}",
            remaining=max(1, int(rng.expovariate(1 / mean_length))),
            device=rng.choice(devices),
            country=rng.choice(["DE", "FR", "US", "GB", "NL", "FI"]),
            referrer=rng.choice(REFERRERS),
            at=start + dt.timedelta(milliseconds=rng.randrange(3_600_000)),
        )

    active = [new_session() for _ in range(concurrent)]
    events: list[Event] = []
    for _ in range(n):
        slot = rng.randrange(concurrent)
        s = active[slot]
        s.at += dt.timedelta(milliseconds=rng.randrange(200, 40_000))
        kind = rng.choices(["page_view", "click", "search", "add_to_cart", "purchase"], [50, 35, 8, 5, 2])[0]
        price = Decimal(rng.randrange(100, 50_000)).scaleb(-2) if kind in ("add_to_cart", "purchase") else None
        events.append(
            Event(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                schema_version=1,
                event_type=kind,
                occurred_at=s.at,
                user_id=s.user_id,
                session_id=s.session_id,
                page_url="https://shop.example.com" + rng.choice(PAGES) + ("?ref=nav" if rng.random() < 0.2 else ""),
                referrer=s.referrer,
                utm_source=None,
                utm_medium=None,
                utm_campaign=None,
                device_type=s.device[0],
                browser=s.device[1],
                os=s.device[2],
                country=s.country,  # type: ignore[arg-type]
                element_id="btn-buy" if kind == "click" else None,
                search_query="red shoes" if kind == "search" else None,
                product_id="p-1" if price is not None else None,
                price=price,
                order_id=f"o-{rng.getrandbits(32)}" if kind == "purchase" else None,
                revenue=price * 2 if kind == "purchase" and price is not None else None,
            )
        )
        s.remaining -= 1
        if s.remaining == 0:
            active[slot] = new_session()
    return events


# --- the baseline: the previous design, for same-run comparisons only -------------------

RECOMPUTE_SQL = """
WITH per_event AS (
    -- Every event of the sessions, in (occurred_at, event_id) order (the events_session_idx
    -- index delivers them so); each window aggregate spans the whole session.
    SELECT session_id,
           row_number()          OVER w AS position,
           first_value(event_id) OVER w AS first_event_id,
           min(occurred_at)      OVER w AS started_at,
           max(occurred_at)      OVER w AS ended_at,
           count(*)              OVER w AS events,
           count(*) FILTER (WHERE event_type = 'page_view')   OVER w AS page_views,
           count(*) FILTER (WHERE event_type = 'click')       OVER w AS clicks,
           count(*) FILTER (WHERE event_type = 'search')      OVER w AS searches,
           count(*) FILTER (WHERE event_type = 'add_to_cart') OVER w AS add_to_carts,
           count(*) FILTER (WHERE event_type = 'purchase')    OVER w AS purchases,
           coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase') OVER w, 0) AS revenue,
           -- the session's page_view paths in event order (NULL when it has none)
           array_agg(page_path) FILTER (WHERE event_type = 'page_view') OVER w AS viewed_paths
    FROM events
    WHERE session_id = ANY (%(session_ids)s::text[])
    WINDOW w AS (PARTITION BY session_id ORDER BY occurred_at, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), measured AS (
    SELECT p.*,
           -- attribution and device: from the session's earliest event
           f.user_id, f.referrer, f.utm_source, f.utm_medium, f.utm_campaign,
           f.device_type, f.browser, f.os, f.country,
           round(extract(EPOCH FROM p.ended_at - p.started_at), 3)          AS duration_s,
           (SELECT count(DISTINCT path) FROM unnest(p.viewed_paths) AS path) AS unique_pages,
           p.viewed_paths[1]                                                AS landing_page,
           p.viewed_paths[cardinality(p.viewed_paths)]                      AS exit_page,
           p.purchases > 0                                                  AS converted
    FROM per_event AS p
    -- (the earliest event's occurred_at is started_at: with it the lookup also uses the
    -- primary key on TimescaleDB, where that key is (event_id, occurred_at))
    JOIN events AS f ON f.event_id = p.first_event_id AND f.occurred_at = p.started_at
    WHERE p.position = 1  -- one row per session: the window values are the same on every row
)
INSERT INTO sessions AS s (
    session_id, user_id, started_at, ended_at, duration_s,
    events, page_views, unique_pages, clicks, searches, add_to_carts, purchases, revenue,
    landing_page, exit_page,
    referrer, utm_source, utm_medium, utm_campaign, device_type, browser, os, country,
    converted, is_engaged, is_bounce, version, updated_at
)
SELECT m.session_id, m.user_id, m.started_at, m.ended_at, m.duration_s,
       m.events, m.page_views, m.unique_pages, m.clicks, m.searches, m.add_to_carts, m.purchases, m.revenue,
       m.landing_page, m.exit_page,
       m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.device_type, m.browser, m.os, m.country,
       m.converted, e.is_engaged, NOT e.is_engaged,
       1,
       now()
FROM measured AS m
CROSS JOIN LATERAL (
    SELECT m.duration_s >= 10 OR m.page_views >= 2 OR m.converted AS is_engaged
) AS e
ON CONFLICT (session_id) DO UPDATE SET
    user_id      = excluded.user_id,
    started_at   = excluded.started_at,
    ended_at     = excluded.ended_at,
    duration_s   = excluded.duration_s,
    events       = excluded.events,
    page_views   = excluded.page_views,
    unique_pages = excluded.unique_pages,
    clicks       = excluded.clicks,
    searches     = excluded.searches,
    add_to_carts = excluded.add_to_carts,
    purchases    = excluded.purchases,
    revenue      = excluded.revenue,
    landing_page = excluded.landing_page,
    exit_page    = excluded.exit_page,
    referrer     = excluded.referrer,
    utm_source   = excluded.utm_source,
    utm_medium   = excluded.utm_medium,
    utm_campaign = excluded.utm_campaign,
    device_type  = excluded.device_type,
    browser      = excluded.browser,
    os           = excluded.os,
    country      = excluded.country,
    converted    = excluded.converted,
    is_engaged   = excluded.is_engaged,
    is_bounce    = excluded.is_bounce,
    version      = s.version + 1,
    updated_at   = excluded.updated_at
RETURNING s.*
"""
"""The session upsert as it was before the incremental merge (recompute every touched session
from ALL its stored events). Not a definition of anything: metrics live in metrics.sql."""

SESSION_INDEX = (
    "CREATE INDEX events_session_idx ON events (session_id, occurred_at, event_id)"
    " INCLUDE (event_type, page_path, revenue)"
)
"""The index the recompute read every touched session's events through (old migration 0001)."""
MERGE_STATE_COLUMNS = (
    "first_event_id",
    "landing_event_at",
    "landing_event_id",
    "exit_event_at",
    "exit_event_id",
    "viewed_paths",
)
PLAIN_INSERT = sql.SQL("INSERT INTO events ({columns}) SELECT {values} FROM {staging} ON CONFLICT DO NOTHING").format(
    columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
    values=sql.SQL(", ").join(
        sql.SQL("{c}::uuid").format(c=sql.Identifier(c)) if c == "event_id" else sql.Identifier(c) for c in COLUMNS
    ),
    staging=sql.Identifier(STAGING_TABLE),
)


class RecomputeStore(PostgresStore):
    """The previous write(): lock, COPY, plain INSERT, recompute the batch's sessions."""

    def write(self, envelopes: Sequence[Envelope]) -> list[SessionRow]:
        timings = WriteTimings(events=len(envelopes))
        self.last_timings = timings
        started = time.perf_counter()
        rows = _staging_rows(envelopes)
        session_ids = sorted({envelope.event.session_id for envelope in envelopes})
        lock_keys = sorted({session_lock_key(session_id) for session_id in session_ids})
        timings.prepare = time.perf_counter() - started
        timings.sessions = len(session_ids)
        conn = self._connection()
        with conn.transaction():
            mark = time.perf_counter()
            conn.execute(LOCK_SESSIONS, [lock_keys], prepare=True)
            timings.lock, mark = _since(mark)
            self._copy(conn, rows)
            timings.copy, mark = _since(mark)
            timings.inserted = max(conn.execute(PLAIN_INSERT, prepare=True).rowcount, 0)
            timings.insert, mark = _since(mark)
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(RECOMPUTE_SQL, {"session_ids": session_ids}, prepare=True)  # type: ignore[arg-type]
                result: list[SessionRow] = cur.fetchall()
            timings.merge, mark = _since(mark)
        timings.commit, _ = _since(mark)
        result.sort(key=lambda row: row["session_id"])
        return result


def prepare_variant(db: Settings, variant: str) -> None:
    """Schema changes a variant needs on its fresh, migrated database (admin role)."""
    with psycopg.connect(db.postgres.conninfo("admin"), autocommit=True) as admin:
        if variant in ("sessionidx", "recompute"):
            admin.execute(SESSION_INDEX)
        if variant == "recompute":
            admin.execute(
                sql.SQL("ALTER TABLE sessions {}").format(
                    sql.SQL(", ").join(sql.SQL("DROP COLUMN {}").format(sql.Identifier(c)) for c in MERGE_STATE_COLUMNS)
                )
            )


def lock_table_capacity(db: Settings) -> int:
    """Lock-table slots: max_locks_per_transaction x (backends + prepared transactions)."""
    with psycopg.connect(db.postgres.conninfo("admin")) as admin:
        value = admin.execute(
            "SELECT current_setting('max_locks_per_transaction')::int * ("
            " current_setting('max_connections')::int + current_setting('autovacuum_max_workers')::int + 1"
            " + current_setting('max_worker_processes')::int + current_setting('max_wal_senders')::int"
            " + current_setting('max_prepared_transactions')::int)"
        ).fetchone()
    return int(value[0])  # type: ignore[index]


def locks_held_by_one_batch(db: Settings, envelopes: Sequence[Envelope]) -> tuple[int, int]:
    """(advisory, all) locks one write of ``envelopes`` holds, counted in its own transaction."""
    with PostgresStore(db) as store:
        conn = store._connection()
        keys = sorted({session_lock_key(e.event.session_id) for e in envelopes})
        with conn.transaction(force_rollback=True):
            conn.execute(LOCK_SESSIONS, [keys])
            conn.execute("SELECT 1 FROM events, sessions LIMIT 0")  # the relation locks of a write
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE locktype = 'advisory'), count(*) FROM pg_locks"
                " WHERE pid = pg_backend_pid()"
            ).fetchone()
    return int(row[0]), int(row[1])  # type: ignore[index]


@dataclass
class Result:
    timings: WriteTimings
    client_cpu: float
    server_cpu: float | None
    max_sessions: int = 0
    """The most sessions (so advisory locks) one batch touched."""


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a PostgreSQL backend, when it runs on this machine."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def run(
    settings_path: Path, events: list[Event], batch_size: int, copy_format: CopyFormat, variants: list[str]
) -> dict[str, Result]:
    """Write ``events`` in batches into one fresh database per variant, interleaved batch by batch.

    Every batch goes to each variant in turn (the order alternating from batch to batch),
    so a change in the machine's load during the run hits all variants alike.
    """
    settings = load_settings(outputs_file=settings_path)
    ingested = dt.datetime.now(UTC)
    envelopes = [Envelope(e, i % 6, i, ingested) for i, e in enumerate(events)]
    results = {v: Result(WriteTimings(), 0.0, 0.0) for v in variants}
    with ExitStack() as stack:
        stores: dict[str, PostgresStore] = {}
        for variant in variants:
            db = stack.enter_context(temporary_database(settings))
            apply_migrations(db)
            prepare_variant(db, variant)
            kind = RecomputeStore if variant == "recompute" else PostgresStore
            stores[variant] = stack.enter_context(kind(db, copy_format=copy_format))
            stores[variant].write(envelopes[:10])  # connect and create the staging table outside the clock
        for n, start in enumerate(range(10, len(envelopes), batch_size)):
            batch = envelopes[start : start + batch_size]
            for variant in variants if n % 2 == 0 else reversed(variants):
                store, result = stores[variant], results[variant]
                pid = store.backend_pid
                server = backend_cpu_seconds(pid) if pid else None
                client = time.process_time()
                store.write(batch)
                result.client_cpu += time.process_time() - client
                server_end = backend_cpu_seconds(pid) if pid else None
                if result.server_cpu is not None and server is not None and server_end is not None:
                    result.server_cpu += server_end - server
                else:
                    result.server_cpu = None
                t = store.last_timings
                result.max_sessions = max(result.max_sessions, t.sessions)
                for f in fields(WriteTimings):
                    setattr(result.timings, f.name, getattr(result.timings, f.name) + getattr(t, f.name))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-sizes", default="1000,5000,20000")
    parser.add_argument("--formats", default="binary", help="COPY formats to compare (binary,text)")
    parser.add_argument("--variants", default="incremental", help="incremental,sessionidx,recompute (see above)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration, interleaved")
    parser.add_argument(
        "--check-locks",
        action="store_true",
        help="count the locks one batch of the largest size holds, against the lock table",
    )
    parser.add_argument("--concurrent", type=int, default=20_000, help="sessions in flight at once")
    parser.add_argument("--session-events", type=int, default=12, help="mean events per session")
    parser.add_argument("--outputs", type=Path, default=None, help="stack-outputs file (default: the local stack's)")
    args = parser.parse_args()
    outputs = args.outputs or find_local_outputs()

    t0 = time.perf_counter()
    events = live_events(args.events, concurrent=args.concurrent, mean_length=args.session_events)
    print(
        f"built {len(events):,} events in {time.perf_counter() - t0:.1f} s "
        f"({args.concurrent:,} concurrent sessions, ~{args.session_events} events each)"
    )
    print("events/s: wall clock of write() calls; CPU us/event: this process and the PostgreSQL backend;")
    print("events/CPU-s: events per second of CPU spent on both sides (what a shared 2-core machine can afford)")
    header = (
        f"{'variant':<11} {'format':<7} {'batch':>6} {'events/s':>9} {'sess/batch':>10} {'client':>7} "
        f"{'server':>7} {'ev/CPU-s':>9} | {'prepare':>7} {'lock':>6} {'copy':>6} {'insert':>6} {'merge':>6} "
        f"{'commit':>6}  (% of wall time)  load"
    )
    print(header)
    print("-" * len(header))
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    variants = args.variants.split(",")
    for _ in range(args.repeat):
        for copy_format in args.formats.split(","):
            for batch_size in sizes:
                results = run(outputs, events, batch_size, copy_format, variants)  # type: ignore[arg-type]
                for variant, r in results.items():
                    t = r.timings
                    batches = -(-(len(events) - 10) // batch_size)
                    phases = ("prepare", "lock", "copy", "insert", "merge", "commit")
                    share = [100 * getattr(t, p) / t.total for p in phases]
                    server = f"{1e6 * r.server_cpu / t.events:>7.1f}" if r.server_cpu is not None else f"{'n/a':>7}"
                    per_cpu = (
                        f"{t.events / (r.client_cpu + r.server_cpu):>9,.0f}"
                        if r.server_cpu is not None
                        else f"{'n/a':>9}"
                    )
                    print(
                        f"{variant:<11} {copy_format:<7} {batch_size:>6} {t.events / t.total:>9,.0f} "
                        f"{t.sessions / batches:>10,.0f} {1e6 * r.client_cpu / t.events:>7.1f} {server} {per_cpu} | "
                        + " ".join(f"{x:>6.1f}%" if i == 0 else f"{x:>5.1f}%" for i, x in enumerate(share))
                        + f"  {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    if args.check_locks:
        settings = load_settings(outputs_file=outputs)
        largest = max(sizes)
        ingested = dt.datetime.now(UTC)
        busiest = max(
            (events[s : s + largest] for s in range(10, len(events), largest)),
            key=lambda chunk: len({e.session_id for e in chunk}),
        )
        with temporary_database(settings) as db:
            apply_migrations(db)
            capacity = lock_table_capacity(db)
            advisory, held = locks_held_by_one_batch(db, [Envelope(e, 0, i, ingested) for i, e in enumerate(busiest)])
        print(
            f"locks: the busiest {largest:,}-event batch holds {advisory:,} advisory locks ({held:,} in all); "
            f"the server's lock table has about {capacity:,} slots for all sessions together"
        )


if __name__ == "__main__":
    main()
