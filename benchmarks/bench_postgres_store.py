"""How fast does the PostgreSQL sink store events and keep their sessions current?

Writes N synthetic events through ``PostgresStore.write`` in batches of a few sizes and
prints events per second for each, with the split of the time between building the rows
in Python, the advisory locks, COPY into the staging table, ``INSERT ... SELECT`` into
``events`` (collecting the new ones in ``events_new``) and the session merge
(``pipeline/sinks/postgres/metrics.sql``, which also reads back the batch's session rows), plus
the commit.

Why synthetic events with a live-traffic shape instead of ``pipeline.simulation``:
the generator's realistic walk costs more CPU than the sink itself, and what decides the
sink's speed is the shape of a batch: how many sessions it touches and how many earlier
events each of them already has. So the events here come from ``--concurrent`` sessions
in flight at once, each ``--session-events`` long on average, interleaved at random like
a busy shop: a 5,000-event batch then touches thousands of sessions that each have
history.

The session merge is the largest step, but it does not grow with a session's history:
its cost is rewriting each touched session's row (HOT updates included), so larger
batches, which touch fewer sessions per event, are cheaper per event. (The figures, and
how the incremental merge compared with the recompute it replaced, are in
``docs/decisions.md``.)

Each (format, batch size) run gets a fresh database of its own (created and dropped with
the admin role, migrated, written with the application role), so runs do not disturb
each other or anyone else's data. Run against the local stack (``devstack up``)::

    .venv/bin/python -m benchmarks.bench_postgres_store
    .venv/bin/python -m benchmarks.bench_postgres_store --repeat 2
    .venv/bin/python -m benchmarks.bench_postgres_store --events 400000 --batch-sizes 5000 --formats binary,text
    .venv/bin/python -m benchmarks.bench_postgres_store --batch-sizes 5000 --variants current,no-brin --repeat 5

``--variants`` runs the same batches against alternatives of the schema or the staging
table, interleaved with the sink as it is (``current``), to see whether one pays:

* ``no-brin``: without the BRIN index on ``events.occurred_at``;
* ``unlogged``: the staging table one shared UNLOGGED table (made by the admin role, as a
  migration would), emptied by a ``DELETE ... RETURNING`` inside the INSERT statement
  instead of a temporary table per connection emptied at commit;
* ``temp-per-batch``: the temporary staging table created in every batch's transaction
  and dropped at its commit, instead of once per connection.

The alternatives are made by swapping the sink's staging SQL for the run (the sink
itself has no such switch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from unittest import mock

import psycopg
from psycopg import sql

from pipeline.config.settings import Settings, find_local_outputs, load_settings
from pipeline.contract.event import DeviceType, Event, EventType
from pipeline.sinks.batch import Envelope
from pipeline.sinks.postgres import store as sink
from pipeline.sinks.postgres.migrate import apply_migrations
from pipeline.sinks.postgres.store import (
    LOCK_SESSIONS,
    CopyFormat,
    EventTransaction,
    PostgresStore,
    WriteTimings,
    session_lock_key,
)
from tests.support.postgres_db import app_user, temporary_database

UTC = dt.UTC
PAGES = ["/", "/search", "/cart", "/checkout"] + [f"/c/{c}" for c in range(20)] + [f"/p/p-{p}" for p in range(500)]
KINDS: list[EventType] = ["page_view", "click", "search", "add_to_cart", "purchase"]
REFERRERS = [None, "https://www.google.com/", "https://news.example.org/a/1", "android-app://com.example.social"]


@dataclass
class _Session:
    session_id: str
    user_id: str
    remaining: int
    device: tuple[DeviceType, str, str]
    country: str
    referrer: str | None
    at: dt.datetime


def live_events(n: int, *, concurrent: int, mean_length: int, seed: int = 11) -> list[Event]:
    """``n`` valid events from ``concurrent`` interleaved sessions of ~``mean_length`` events."""
    rng = random.Random(seed)
    start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    devices: list[tuple[DeviceType, str, str]] = [
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
        kind = rng.choices(KINDS, [50, 35, 8, 5, 2])[0]
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
                country=s.country,
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


VARIANTS = ("current", "no-brin", "unlogged", "temp-per-batch")


def _unlogged_insert(conn: psycopg.Connection[Any]) -> str:
    """The sink's INSERT_EVENTS reading a shared staging table, which it empties as it reads."""
    text = sink.INSERT_EVENTS.as_string(conn)
    source = f"FROM {sql.Identifier(sink.STAGING_TABLE).as_string(conn)} "
    assert text.startswith("WITH ") and text.count(source) == 1, text
    staged = f"WITH staged AS (DELETE FROM public.{sink.STAGING_TABLE} RETURNING *), "
    return staged + text.removeprefix("WITH ").replace(source, "FROM staged ")


def _staging_select(conn: psycopg.Connection[Any]) -> str:
    """The ``AS SELECT ...`` part of the sink's own CREATE_STAGING: the staging columns."""
    text = sink.CREATE_STAGING.as_string(conn)
    return text[text.index(" AS SELECT ") :]


@contextmanager
def variant(name: str, db: Settings) -> Iterator[None]:
    """Make ``db`` (migrated, empty) and the sink's staging SQL into the variant ``name``."""
    with ExitStack() as undo:
        with psycopg.connect(db.postgres.conninfo("admin"), autocommit=True) as admin:
            if name == "no-brin":
                admin.execute("DROP INDEX events_occurred_at_idx")
            elif name == "unlogged":
                staging = sql.Identifier(sink.STAGING_TABLE)
                admin.execute(f"CREATE UNLOGGED TABLE public.{sink.STAGING_TABLE}{_staging_select(admin)}")
                admin.execute(
                    sql.SQL("GRANT SELECT, INSERT, DELETE ON {} TO {}").format(staging, sql.Identifier(app_user(db)))
                )
                admin.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_vacuum_scale_factor = 0)").format(staging))
                insert = _unlogged_insert(admin)
                undo.enter_context(mock.patch.object(sink, "INSERT_EVENTS", insert))
                undo.enter_context(mock.patch.object(PostgresStore, "_create_staging", staticmethod(_shared_staging)))
            elif name == "temp-per-batch":
                undo.enter_context(mock.patch.object(sink, "EventTransaction", _StagingPerBatch))
                undo.enter_context(mock.patch.object(PostgresStore, "_create_staging", staticmethod(_no_staging)))
            elif name != "current":
                raise ValueError(f"unknown variant {name!r}; one of {', '.join(VARIANTS)}")
        yield


def _shared_staging(conn: psycopg.Connection[Any]) -> list[str]:
    """``unlogged``: no temporary staging table; the types are those of the shared one."""
    conn.execute(sink.CREATE_NEW_EVENTS)
    query = sink.STAGING_TYPES.replace("pg_temp.events_staging", "public.events_staging")
    return [str(row[0]) for row in conn.execute(query).fetchall()]


_create_staging = PostgresStore._create_staging


def _no_staging(conn: psycopg.Connection[Any]) -> list[str]:
    """``temp-per-batch``: read the staging types once, then drop the table; each batch makes its own."""
    types = _create_staging(conn)
    conn.execute(f"DROP TABLE pg_temp.{sink.STAGING_TABLE}")
    return types


class _StagingPerBatch(EventTransaction):
    """``temp-per-batch``: the sink's transaction, making its staging table before the COPY."""

    def _copy(self, rows: Sequence[tuple[Any, ...]]) -> None:
        text = f"CREATE TEMPORARY TABLE IF NOT EXISTS {sink.STAGING_TABLE} ON COMMIT DROP{_staging_select(self._conn)}"
        self._conn.execute(text)
        super()._copy(rows)


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
    settings_path: Path, events: list[Event], batch_size: int, copy_format: CopyFormat, variant_name: str = "current"
) -> Result:
    """Write ``events`` in batches of ``batch_size`` into a fresh database; what it cost."""
    settings = load_settings(outputs_file=settings_path)
    ingested = dt.datetime.now(UTC)
    envelopes = [Envelope(e, i % 6, i, ingested) for i, e in enumerate(events)]
    result = Result(WriteTimings(), 0.0, 0.0)
    with temporary_database(settings) as db:
        apply_migrations(db)
        with variant(variant_name, db), PostgresStore(db, copy_format=copy_format) as store:
            store.write(envelopes[:10])  # connect and create the staging table outside the clock
            for start in range(10, len(envelopes), batch_size):
                batch = envelopes[start : start + batch_size]
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
    return result


def _spread(values: list[float], spec: str) -> str:
    return f"{statistics.median(values):{spec}} [{min(values):{spec}}-{max(values):{spec}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-sizes", default="1000,5000,20000")
    parser.add_argument("--formats", default="binary", help="COPY formats to compare (binary,text)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration, in turn")
    parser.add_argument(
        "--variants", default="current", help=f"schema/staging variants to compare ({','.join(VARIANTS)})"
    )
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
        f"{'variant':<14} {'format':<7} {'batch':>6} {'events/s':>9} {'sess/batch':>10} {'client':>7} "
        f"{'server':>7} {'ev/CPU-s':>9} | {'prepare':>7} {'lock':>6} {'copy':>6} {'insert':>6} {'merge':>6} "
        f"{'commit':>6}  (% of wall time)  load"
    )
    print(header)
    print("-" * len(header))
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    variants = args.variants.split(",")
    figures: dict[tuple[str, str, int], list[tuple[float, float | None, float, float]]] = {}
    for _ in range(args.repeat):
        for copy_format, batch_size, name in itertools.product(args.formats.split(","), sizes, variants):
            r = run(outputs, events, batch_size, cast("CopyFormat", copy_format), name)
            t = r.timings
            batches = -(-(len(events) - 10) // batch_size)
            phases = ("prepare", "lock", "copy", "insert", "merge", "commit")
            share = [100 * getattr(t, p) / t.total for p in phases]
            server = f"{1e6 * r.server_cpu / t.events:>7.1f}" if r.server_cpu is not None else f"{'n/a':>7}"
            per_cpu = (
                f"{t.events / (r.client_cpu + r.server_cpu):>9,.0f}" if r.server_cpu is not None else f"{'n/a':>9}"
            )
            server_us = None if r.server_cpu is None else 1e6 * r.server_cpu / t.events
            per_batch = (1e3 * (t.copy + t.insert) / batches, 1e3 * t.merge / batches)
            figures.setdefault((name, copy_format, batch_size), []).append((t.events / t.total, server_us, *per_batch))
            print(
                f"{name:<14} {copy_format:<7} {batch_size:>6} {t.events / t.total:>9,.0f} "
                f"{t.sessions / batches:>10,.0f} {1e6 * r.client_cpu / t.events:>7.1f} {server} {per_cpu} | "
                + " ".join(f"{x:>6.1f}%" if i == 0 else f"{x:>5.1f}%" for i, x in enumerate(share))
                + f"  {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    if args.repeat > 1:
        print(
            "\nmedian [min-max] over the repeats: events/s; ms per batch of copy + insert, of merge;"
            " PostgreSQL backend CPU us/event"
        )
        for (name, copy_format, batch_size), runs in figures.items():
            rates, stores, merges = [r[0] for r in runs], [r[2] for r in runs], [r[3] for r in runs]
            cpu = [r[1] for r in runs if r[1] is not None]
            line = (
                f"{name:<14} {copy_format:<7} {batch_size:>6} {_spread(rates, '.0f')}  "
                f"{_spread(stores, '.1f')}  {_spread(merges, '.1f')}"
            )
            print(line + (f"   {_spread(cpu, '.1f')}" if cpu else ""))
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
