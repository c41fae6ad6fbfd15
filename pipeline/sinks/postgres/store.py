"""The PostgreSQL sink: a batch of events in, the current session rows out, in ONE transaction.

One ``write(batch)`` does, atomically:

1. ``pg_advisory_xact_lock`` on every session of the batch, in sorted key order. Kafka
   keys messages by user, so normally one consumer owns a session; but during a
   rebalance two processes can briefly hold batches of the same partition. The session
   merge (step 3) reads each session's stored row and writes it back merged with the
   batch's new events; without the lock two writers could read the same row and the
   later commit would drop the other's events. Sorted order means two writers can never
   deadlock on these locks.
2. COPY the events into a per-connection temporary staging table (one round trip per
   batch; binary COPY costs this process about 40% less CPU than text COPY and the server
   about 10% less, see ``benchmarks/bench_postgres_store.py``), then ``INSERT INTO events
   SELECT ... FROM staging ON CONFLICT DO NOTHING RETURNING ...`` into a second temporary
   table, ``events_new``: exactly the events that were really stored now. A duplicate,
   whether inside the batch, of an event stored long ago or of one another writer stored
   first, costs nothing, changes nothing and is not in ``events_new``.
3. Run ``pipeline/sessions/metrics.sql``: merge ``events_new`` into the ``sessions`` rows of
   their sessions (incrementally: nothing re-reads a session's older events) and return the
   current row of EVERY session in the batch, not only those that got new events: after a
   crash between this commit and the OpenSearch write, the replayed batch stores and
   merges nothing but must still return the session rows to index (with the same
   ``version``, which OpenSearch's ``external_gte`` accepts again).
4. Commit and return those rows, which the OpenSearch sink indexes as they are: the
   public session columns only, never the merge state (see ``metrics.sql``).

Every event must reach ``events`` through this sink: the session rows are the merge of
the events this sink inserted, so an event inserted by other means is stored but never
counted in its session.

Failures: anything transient (connection lost, server restarting, timeouts, deadlock or
serialization failure) raises :class:`~pipeline.errors.SinkUnavailable` after the
transaction rolled back, so nothing of the batch is kept and the consumer retries the same
batch with backoff; the next ``write`` reconnects if the connection broke. Anything else
(schema missing, privilege missing, a value the table rejects) raises
:class:`~pipeline.errors.ServiceError`: retrying would not help.

Capacity note: every session of a batch holds one advisory lock until commit, and the
server's lock table has room for about ``max_locks_per_transaction x (max_connections +
background processes)`` locks in total (64 x 222 = about 14,200 on the local stack; less
on small Aiven plans). A 20,000-event batch of live traffic touches about 13,000 sessions,
so keep batches at the consumer's default (5,000) or raise ``max_locks_per_transaction``;
running out is reported as a retryable :class:`~pipeline.errors.SinkUnavailable` that says so.

A store holds one connection and is not meant to be shared between threads; give each
consumer thread or process its own.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pipeline.config.settings import Settings
from pipeline.errors import ServiceError, SinkUnavailable, first_line
from pipeline.events.contract import FIELDS
from pipeline.sessions import metrics_sql
from pipeline.sinks.batch import Envelope, SessionRow

log = logging.getLogger(__name__)

CopyFormat = Literal["binary", "text"]

SESSION_SETTINGS: Final = (
    # Timestamps come back in UTC whatever the server's default zone is, so the session
    # rows (and the OpenSearch documents made from them) never vary by server.
    "SET TIME ZONE 'UTC'",
    # The session merge reads each session's stored row in a statement that starts after
    # the session locks are granted; under READ COMMITTED that statement's snapshot shows
    # every earlier writer's commit (see metrics.sql). Pinned here so a different default
    # on the role or database cannot change it.
    "SET default_transaction_isolation = 'read committed'",
    # The sink's statements are short and run thousands of times: compiling them with JIT
    # (which a large table's cost estimates can trigger) costs more than it ever saves.
    "SET jit = off",
    # The session merge sorts a batch's new events by session (a 20k-event batch: 20k rows
    # and their page-view arrays); keep that sort in memory instead of spilling to disk.
    "SET work_mem = '64MB'",
)

STAGING_TABLE: Final = "events_staging"
COLUMNS: Final[tuple[str, ...]] = (*FIELDS, "ingested_at", "kafka_partition", "kafka_offset")
"""The columns the sink writes, in COPY order: every contract field, then where it was read."""


def _column_list() -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, COLUMNS))


# ``event_id`` is staged as text (the contract's canonical string: no per-row UUID object in
# Python, and binary COPY needs no conversion) and becomes ``uuid`` in the INSERT ... SELECT.
# The staging table is derived from ``events`` so its types follow the migrations.
CREATE_STAGING: Final = sql.SQL(
    "CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS SELECT {columns} FROM events WITH NO DATA"
).format(
    staging=sql.Identifier(STAGING_TABLE),
    columns=sql.SQL(", ").join(
        sql.SQL("{c}::text AS {c}").format(c=sql.Identifier(c)) if c == "event_id" else sql.Identifier(c)
        for c in COLUMNS
    ),
)
STAGING_TYPES: Final = (
    "SELECT t.typname FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid "
    "WHERE a.attrelid = 'pg_temp.events_staging'::regclass AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum"
)
NEW_EVENTS_TABLE: Final = "events_new"
NEW_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "session_id", "event_id", "occurred_at", "event_type", "page_path", "revenue",
    "user_id", "referrer", "utm_source", "utm_medium", "utm_campaign", "device_type", "browser", "os", "country",
)
"""The columns of ``events_new``: what ``metrics.sql`` needs of each newly stored event."""

# Like staging: per connection, made once, emptied at every commit, typed after ``events``.
CREATE_NEW_EVENTS: Final = sql.SQL(
    "CREATE TEMPORARY TABLE IF NOT EXISTS {new} ON COMMIT DELETE ROWS AS SELECT {columns} FROM events WITH NO DATA"
).format(new=sql.Identifier(NEW_EVENTS_TABLE), columns=sql.SQL(", ").join(map(sql.Identifier, NEW_EVENT_COLUMNS)))
INSERT_EVENTS: Final = sql.SQL(
    "WITH inserted AS ("
    "INSERT INTO events ({columns}) SELECT {values} FROM {staging} ON CONFLICT DO NOTHING RETURNING {returned}"
    ") INSERT INTO {new} ({returned}) SELECT {returned} FROM inserted"
).format(
    columns=_column_list(),
    values=sql.SQL(", ").join(
        sql.SQL("{c}::uuid").format(c=sql.Identifier(c)) if c == "event_id" else sql.Identifier(c) for c in COLUMNS
    ),
    staging=sql.Identifier(STAGING_TABLE),
    returned=sql.SQL(", ").join(map(sql.Identifier, NEW_EVENT_COLUMNS)),
    new=sql.Identifier(NEW_EVENTS_TABLE),
)
"""Stores the staged events; the ones really inserted (RETURNING) go to ``events_new``."""
LOCK_SESSIONS: Final = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k"
"""Takes the keys in array order (the caller sorts them); a function scan feeds the
aggregate row by row, so the locks are acquired one after another in that order."""


def copy_statement(copy_format: CopyFormat) -> sql.Composed:
    return sql.SQL("COPY {staging} ({columns}) FROM STDIN (FORMAT {fmt})").format(
        staging=sql.Identifier(STAGING_TABLE), columns=_column_list(), fmt=sql.SQL(copy_format.upper())
    )


@dataclass
class WriteTimings:
    """Seconds spent in each phase of the last ``write`` (what the benchmark reports).

    ``insert`` stores the events (and collects the new ones in ``events_new``); ``merge``
    runs ``metrics.sql``: merges them into their sessions and reads back every session row.
    """

    prepare: float = 0.0
    lock: float = 0.0
    copy: float = 0.0
    insert: float = 0.0
    merge: float = 0.0
    commit: float = 0.0
    events: int = 0
    inserted: int = 0
    sessions: int = 0

    @property
    def total(self) -> float:
        return self.prepare + self.lock + self.copy + self.insert + self.merge + self.commit


def session_lock_key(session_id: str) -> int:
    """A signed 64-bit advisory-lock key for a session (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresStore:
    """Writes batches of events and keeps their sessions current; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        connect_timeout: float = 10.0,
        copy_format: CopyFormat = "binary",
        application_name: str = "clickstream-consumer",
    ) -> None:
        self._conninfo = settings.postgres.conninfo("app")
        self._connect_timeout = connect_timeout
        self._copy_format: CopyFormat = copy_format
        self._application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._column_types: list[str] = []
        self.last_timings = WriteTimings()

    # -- public API ------------------------------------------------------------------

    def write(self, envelopes: Sequence[Envelope]) -> list[SessionRow]:
        """Store the batch and return the row of every session it touches (sorted by session_id).

        Idempotent: writing the same batch again stores nothing, changes nothing and returns
        the same rows (same ``version``, same ``updated_at``).
        """
        timings = WriteTimings(events=len(envelopes))
        self.last_timings = timings
        if not envelopes:
            return []
        started = time.perf_counter()
        rows = _staging_rows(envelopes)
        session_ids = sorted({envelope.event.session_id for envelope in envelopes})
        lock_keys = sorted({session_lock_key(session_id) for session_id in session_ids})
        timings.prepare = time.perf_counter() - started
        timings.sessions = len(session_ids)
        conn = self._connection()
        try:
            with conn.transaction():
                mark = time.perf_counter()
                conn.execute(LOCK_SESSIONS, [lock_keys], prepare=True)
                timings.lock, mark = _since(mark)
                self._copy(conn, rows)
                timings.copy, mark = _since(mark)
                inserted = conn.execute(INSERT_EVENTS, prepare=True).rowcount
                timings.inserted = max(inserted, 0)
                timings.insert, mark = _since(mark)
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(metrics_sql(), {"session_ids": session_ids}, prepare=True)  # type: ignore[arg-type]
                    result: list[SessionRow] = cur.fetchall()
                timings.merge, mark = _since(mark)
            timings.commit, _ = _since(mark)
        except psycopg.errors.OutOfMemory as exc:
            # Typically "out of shared memory" from the lock table: one advisory lock per session.
            raise SinkUnavailable(
                f"PostgreSQL ran out of shared memory with {len(lock_keys)} session locks in one batch "
                f"({first_line(exc)}); raise max_locks_per_transaction or use smaller batches"
            ) from exc
        except psycopg.OperationalError as exc:  # includes deadlocks and serialization failures
            if conn.closed or conn.broken:
                self._discard()
            raise SinkUnavailable(f"PostgreSQL write failed, batch rolled back (retry): {first_line(exc)}") from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise ServiceError(
                f"PostgreSQL schema missing or outdated ({first_line(exc)}); run `pipeline schema`"
            ) from exc
        except psycopg.Error as exc:
            raise ServiceError(f"PostgreSQL rejected the batch: {first_line(exc)}") from exc
        # Two runs already in session_id order (merged, then unchanged sessions): a cheap sort.
        result.sort(key=_session_id)
        return result

    @property
    def backend_pid(self) -> int | None:
        """The server process of the current connection (for diagnostics and benchmarks)."""
        return self._conn.info.backend_pid if self._conn is not None and not self._conn.closed else None

    def close(self) -> None:
        """Close the connection; a later ``write`` would open a new one."""
        self._discard()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------

    def _copy(self, conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur, cur.copy(copy_statement(self._copy_format)) as copy:
            if self._copy_format == "binary":
                copy.set_types(self._column_types)
            for row in rows:
                copy.write_row(row)

    def _connection(self) -> psycopg.Connection[Any]:
        """The long-lived connection, (re)opened on demand with its staging table."""
        if self._conn is not None and not (self._conn.closed or self._conn.broken):
            return self._conn
        self._discard()
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=int(self._connect_timeout),
                application_name=self._application_name,
            )
        except psycopg.OperationalError as exc:
            raise SinkUnavailable(f"cannot connect to PostgreSQL: {first_line(exc)}") from exc
        try:
            for setting in SESSION_SETTINGS:
                conn.execute(setting)
            self._column_types = self._create_staging(conn)
        except psycopg.OperationalError as exc:
            conn.close()
            raise SinkUnavailable(f"PostgreSQL failed while preparing the session: {first_line(exc)}") from exc
        except psycopg.Error as exc:
            conn.close()
            raise ServiceError(
                f"cannot prepare the staging table ({first_line(exc)}); has `pipeline schema` been run?"
            ) from exc
        self._conn = conn
        return conn

    @staticmethod
    def _create_staging(conn: psycopg.Connection[Any]) -> list[str]:
        """Create the connection's staging and new-events tables; return the staging column types.

        Made once per connection, not per batch: no catalog churn per write. ``ON COMMIT
        DELETE ROWS`` empties them at every commit; a rollback discards their rows anyway.
        (The column types are what binary COPY needs.)
        """
        conn.execute(CREATE_STAGING)
        conn.execute(CREATE_NEW_EVENTS)
        return [str(row[0]) for row in conn.execute(STAGING_TYPES).fetchall()]

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:  # a broken connection may fail to close cleanly; it is gone either way
                log.debug("closing a broken PostgreSQL connection failed", exc_info=True)


def _staging_rows(envelopes: Sequence[Envelope]) -> list[tuple[Any, ...]]:
    """One COPY row per distinct event_id (the first occurrence wins), in ``COLUMNS`` order.

    Dropping in-batch duplicates here keeps the COPY small; ON CONFLICT would drop them too.
    """
    rows: dict[str, tuple[Any, ...]] = {}
    astuple = msgspec.structs.astuple
    for envelope in envelopes:
        event = envelope.event
        if event.event_id not in rows:
            rows[event.event_id] = (*astuple(event), envelope.ingested_at, envelope.partition, envelope.offset)
    return list(rows.values())


_session_id: Final = operator.itemgetter("session_id")


def _since(mark: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now - mark, now


__all__ = ["COLUMNS", "NEW_EVENT_COLUMNS", "CopyFormat", "PostgresStore", "WriteTimings", "session_lock_key"]
