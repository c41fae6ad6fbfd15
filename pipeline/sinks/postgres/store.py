"""The PostgreSQL sink: a batch of events in, the current session rows out, in ONE transaction.

:meth:`PostgresStore.transaction` opens the batch's transaction and hands out an
:class:`EventTransaction`, whose steps the batch writer (``pipeline.sinks.writer``)
calls in this order:

1. :meth:`~EventTransaction.insert`: COPY the events into a per-connection temporary
   staging table (one round trip per batch; binary rather than text COPY because it costs
   less CPU on both sides, as ``benchmarks/bench_postgres_store.py`` measures: figures in
   docs/decisions.md), then ``INSERT INTO events SELECT ... FROM
   staging ON CONFLICT DO NOTHING RETURNING ...`` into a second temporary table,
   ``events_new``: exactly the events that were really stored now. A duplicate, whether
   of an event stored long ago or of one another writer stored first, costs nothing,
   changes nothing and is not in ``events_new``. All of it inside a savepoint, so the
   writer can :meth:`~EventTransaction.undo` it. When the server (or the driver) refuses a
   value, the batch is split in halves, each half tried in a savepoint of its own, down
   to the single events that fail: those come back as refusals with the server's own
   words, everything else is stored. After the inserts, one number is drawn from the
   ``event_document_version`` sequence: the version the writer indexes the new events'
   documents with (see migration 0005 for why this makes the committing transaction's
   copy win in OpenSearch).
2. :meth:`~EventTransaction.merge`: ``pg_advisory_xact_lock`` on every session of the
   batch, in sorted key order, then the session merge (``metrics.sql``), which merges
   ``events_new`` into the ``sessions`` rows of their sessions (incrementally: nothing
   re-reads a session's older events) and returns the current row of EVERY session in the
   batch, not only those that got new events: after a crash between this commit and the
   OpenSearch write, the replayed batch stores and merges nothing but must still return
   the session rows to index. Kafka keys messages by user, so normally one consumer owns
   a session; but during a rebalance two processes can briefly hold batches of the same
   partition, and without the lock two writers could read the same row and the later
   commit would drop the other's events. Sorted order means two writers never deadlock
   on these locks. The locks are taken only now, after the inserts and the writer's
   OpenSearch event write, so they are held for the merge and the commit alone.
3. Commit, when the ``with`` block ends without an exception.

Every event must reach ``events`` through this sink: the session rows are the merge of
the events this sink inserted, so an event inserted by other means is stored but never
counted in its session.

Failures: anything transient (connection lost, server restarting, timeouts, deadlock or
serialization failure, a read-only server) raises :class:`~pipeline.errors.SinkUnavailable`
after the transaction rolled back, so nothing of the batch is kept and the consumer retries
the same batch with backoff; the next transaction reconnects if the connection broke.
Anything else (schema missing, privilege missing, every event of a batch refused with the
same error) raises :class:`~pipeline.errors.ServiceError`: retrying would not help.

Capacity note: every session of a batch holds one advisory lock until commit, and the
server's lock table has room for about ``max_locks_per_transaction x (max_connections +
background processes)`` locks in total. The Pulumi program and the local stack set
``max_locks_per_transaction`` to ``names.MAX_LOCKS_PER_TRANSACTION`` (256 x 222 = about
56,800 on the local stack). A 20,000-event batch of live traffic touches about 13,000
sessions, and the consumer writes up to ``--in-flight`` batches at once; running out is
reported as a retryable :class:`~pipeline.errors.SinkUnavailable` that says so.

A store holds one connection and is not meant to be shared between threads; give each
consumer thread or process its own.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pipeline.config.settings import Settings
from pipeline.contract.event import FIELDS
from pipeline.errors import ServiceError, SinkUnavailable, first_line
from pipeline.events.decode import Reason
from pipeline.sinks.batch import Envelope, Refusal, SessionRow, first_copies, refused_alike
from pipeline.sinks.postgres.metrics import NEW_EVENT_COLUMNS, metrics_sql
from pipeline.sinks.postgres.refusals import ROW_ERRORS, describe, error_key

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
CLEAR_STAGING: Final = sql.SQL("DELETE FROM {staging}").format(staging=sql.Identifier(STAGING_TABLE))
NEW_EVENTS_TABLE: Final = "events_new"

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
NEXT_DOCUMENT_VERSION: Final = "SELECT nextval('event_document_version')"
INSERTED_IDS: Final = sql.SQL("SELECT event_id::text FROM {new}").format(new=sql.Identifier(NEW_EVENTS_TABLE))
STORED_COPIES: Final = sql.SQL("SELECT {columns} FROM events WHERE event_id = ANY(%s::uuid[])").format(
    columns=sql.SQL(", ").join(sql.SQL("event_id::text") if c == "event_id" else sql.Identifier(c) for c in FIELDS)
)
"""The contract fields of stored events, in ``FIELDS`` order: what a later copy is compared with."""
LOCK_SESSIONS: Final = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k"
"""Takes the keys in array order (the caller sorts them); a function scan feeds the
aggregate row by row, so the locks are acquired one after another in that order."""
SAVEPOINT: Final = "SAVEPOINT batch_events"
UNDO: Final = "ROLLBACK TO SAVEPOINT batch_events"


def copy_statement(copy_format: CopyFormat) -> sql.Composed:
    return sql.SQL("COPY {staging} ({columns}) FROM STDIN (FORMAT {fmt})").format(
        staging=sql.Identifier(STAGING_TABLE), columns=_column_list(), fmt=sql.SQL(copy_format.upper())
    )


@dataclass
class WriteTimings:
    """Seconds spent in each phase of the last transaction (what the benchmark reports).

    ``insert`` stages and stores the events (and collects the new ones in ``events_new``),
    ``isolate`` is the search for refused events (zero unless one was refused), ``merge``
    runs ``metrics.sql``: merges them into their sessions and reads back every session row.
    """

    prepare: float = 0.0
    lock: float = 0.0
    copy: float = 0.0
    insert: float = 0.0
    isolate: float = 0.0
    merge: float = 0.0
    commit: float = 0.0
    events: int = 0
    inserted: int = 0
    sessions: int = 0

    @property
    def total(self) -> float:
        return self.prepare + self.lock + self.copy + self.insert + self.isolate + self.merge + self.commit


@dataclass
class StoredEvents:
    """What :meth:`EventTransaction.insert` did with a batch's events."""

    inserted: list[Envelope]
    """The events this transaction stored (their copy is now THE copy): index exactly these."""
    refused: list[Refusal]
    """Events PostgreSQL refused, each with the server's reason."""
    version: int
    """The OpenSearch document version for the inserted events (drawn after the inserts)."""
    not_inserted: list[Envelope] = field(default_factory=list)
    """Events whose ``event_id`` was already stored (by an earlier batch or another writer)."""


def session_lock_key(session_id: str) -> int:
    """A signed 64-bit advisory-lock key for a session (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=8).digest(), "big", signed=True)


class EventTransaction:
    """The open transaction of one batch (see the module docstring for the order of the steps)."""

    def __init__(
        self, conn: psycopg.Connection[Any], column_types: list[str], copy_format: CopyFormat, timings: WriteTimings
    ) -> None:
        self._conn = conn
        self._column_types = column_types
        self._copy_format: CopyFormat = copy_format
        self.timings = timings

    def insert(self, envelopes: Sequence[Envelope]) -> StoredEvents:
        """Store ``envelopes`` (one per ``event_id``) in a savepoint; refused ones are left out.

        Raises :class:`ServiceError` when every event of the batch is refused with the same
        error (see :func:`~pipeline.sinks.batch.refused_alike`): that is the database's
        doing, not the messages'.
        """
        mark = time.perf_counter()
        rows = _staging_rows(envelopes)
        self.timings.prepare += time.perf_counter() - mark
        self.timings.events += len(rows)
        conn = self._conn
        conn.execute(SAVEPOINT)
        refused: list[Refusal] = []
        try:
            mark = time.perf_counter()
            self._copy(rows)
            self.timings.copy += time.perf_counter() - mark
            mark = time.perf_counter()
            inserted = conn.execute(INSERT_EVENTS, prepare=True).rowcount
            self.timings.insert += time.perf_counter() - mark
        except ROW_ERRORS as exc:
            conn.execute(UNDO)
            mark = time.perf_counter()
            refused = self._isolate(envelopes, rows, exc)
            self.timings.isolate += time.perf_counter() - mark
            inserted = -1
        if refused_alike(refused, len(envelopes)):
            raise ServiceError(
                f"PostgreSQL refused all {len(refused)} events of a batch with the same error "
                f"({refused[0].detail}); that points at the database, not the messages: nothing was "
                "dead-lettered and the batch is not committed"
            )
        # Drawn only now that every INSERT has finished: see migration 0005 for why.
        version = conn.execute(NEXT_DOCUMENT_VERSION).fetchone()[0]  # type: ignore[index]
        if inserted == len(rows):
            new, old = list(envelopes), []
        else:
            ids = {row[0] for row in conn.execute(INSERTED_IDS).fetchall()}
            gone = {id(r.envelope) for r in refused}
            new = [e for e in envelopes if e.event.event_id in ids]
            old = [e for e in envelopes if e.event.event_id not in ids and id(e) not in gone]
        self.timings.inserted += len(new)
        return StoredEvents(new, refused, int(version), old)

    def undo(self) -> None:
        """Take back everything :meth:`insert` stored (the writer then inserts again without some)."""
        self._conn.execute(UNDO)

    def stored_copies(self, event_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """The stored contract fields (``FIELDS`` order, ``event_id`` as text) of these events."""
        if not event_ids:
            return {}
        return {row[0]: tuple(row) for row in self._conn.execute(STORED_COPIES, [list(event_ids)]).fetchall()}

    def merge(self, session_ids: Sequence[str]) -> list[SessionRow]:
        """Lock the sessions, merge this transaction's new events into them, return their rows."""
        ordered = sorted(set(session_ids))
        lock_keys = sorted({session_lock_key(s) for s in ordered})
        self.timings.sessions = len(ordered)
        mark = time.perf_counter()
        try:
            self._conn.execute(LOCK_SESSIONS, [lock_keys], prepare=True)
        except psycopg.errors.OutOfMemory as exc:
            # Typically "out of shared memory" from the lock table: one advisory lock per session.
            raise SinkUnavailable(
                f"PostgreSQL ran out of shared memory with {len(lock_keys)} session locks in one batch "
                f"({first_line(exc)}); raise max_locks_per_transaction or use smaller batches"
            ) from exc
        self.timings.lock, mark = _since(mark)
        with self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(metrics_sql(), {"session_ids": ordered}, prepare=True)
            result: list[SessionRow] = cur.fetchall()
        self.timings.merge, _ = _since(mark)
        # Two runs already in session_id order (merged, then unchanged sessions): a cheap sort.
        result.sort(key=_session_id)
        return result

    # -- internals -------------------------------------------------------------------

    def _copy(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cur, cur.copy(copy_statement(self._copy_format)) as copy:
            if self._copy_format == "binary":
                copy.set_types(self._column_types)
            for row in rows:
                copy.write_row(row)

    def _isolate(
        self, envelopes: Sequence[Envelope], rows: Sequence[tuple[Any, ...]], first: BaseException
    ) -> list[Refusal]:
        """Store every row the server accepts, each half in a savepoint; return the refused ones.

        Depth first, halving, so ``k`` refused rows among ``n`` cost about ``2 k log2 n``
        small transactions. The whole batch already failed once (``first``).
        """
        conn = self._conn
        refused: list[Refusal] = []
        if len(rows) == 1:
            column, detail = describe(first)
            return [Refusal(envelopes[0], Reason.REFUSED_BY_POSTGRES, column, detail, error_key(first))]
        half = len(rows) // 2
        pending = [(half, len(rows)), (0, half)]
        while pending:
            lo, hi = pending.pop()
            try:
                with conn.transaction():
                    conn.execute(CLEAR_STAGING)
                    self._copy(rows[lo:hi])
                    conn.execute(INSERT_EVENTS, prepare=True)
            except ROW_ERRORS as exc:
                if hi - lo == 1:
                    column, detail = describe(exc)
                    refused.append(Refusal(envelopes[lo], Reason.REFUSED_BY_POSTGRES, column, detail, error_key(exc)))
                    log.warning("PostgreSQL refused event %s: %s", envelopes[lo].event.event_id, detail)
                else:
                    mid = (lo + hi) // 2
                    pending.append((mid, hi))
                    pending.append((lo, mid))
        return refused


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

    @contextmanager
    def transaction(self) -> Iterator[EventTransaction]:
        """The batch's transaction: committed when the block ends, rolled back if it raises.

        PostgreSQL's own failures come out typed (see the module docstring); anything the
        block raises itself (an OpenSearch error, say) rolls back and passes through.
        """
        timings = WriteTimings()
        self.last_timings = timings
        conn = self._connection()
        try:
            with conn.transaction():
                yield EventTransaction(conn, self._column_types, self._copy_format, timings)
                mark = time.perf_counter()
            timings.commit, _ = _since(mark)
        except psycopg.OperationalError as exc:  # includes deadlocks and serialization failures
            if conn.closed or conn.broken:
                self._discard()
            raise SinkUnavailable(f"PostgreSQL write failed, batch rolled back (retry): {first_line(exc)}") from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise SinkUnavailable(
                f"PostgreSQL is read-only for now, batch rolled back (retry): {first_line(exc)}"
            ) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject) as exc:
            raise ServiceError(
                f"PostgreSQL schema missing or outdated ({first_line(exc)}); run `pipeline schema`"
            ) from exc
        except psycopg.Error as exc:
            raise ServiceError(f"PostgreSQL rejected the batch: {first_line(exc)}") from exc

    def write(self, envelopes: Sequence[Envelope]) -> list[SessionRow]:
        """Store the batch and return the row of every session it touches (sorted by session_id).

        PostgreSQL alone, all or nothing: a refused event raises :class:`ServiceError` and
        nothing is kept (the consumer uses ``pipeline.sinks.writer``, which isolates such
        events instead). Idempotent: writing the same batch again stores nothing, changes
        nothing and returns the same rows (same ``version``, same ``updated_at``).
        """
        if not envelopes:
            self.last_timings = WriteTimings()
            return []
        unique, _ = first_copies(envelopes)
        with self.transaction() as tx:
            stored = tx.insert(unique)
            if stored.refused:
                raise ServiceError(
                    f"PostgreSQL refused {len(stored.refused)} event(s) of the batch, e.g. "
                    f"{stored.refused[0].envelope.event.event_id}: {stored.refused[0].detail}"
                )
            return tx.merge([e.event.session_id for e in envelopes])

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
    """One COPY row per envelope, in ``COLUMNS`` order (the caller passes one per event_id)."""
    astuple = msgspec.structs.astuple
    return [(*astuple(e.event), e.ingested_at, e.partition, e.offset) for e in envelopes]


_session_id: Final = operator.itemgetter("session_id")


def _since(mark: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now - mark, now


__all__ = [
    "COLUMNS",
    "CopyFormat",
    "EventTransaction",
    "PostgresStore",
    "StoredEvents",
    "WriteTimings",
    "session_lock_key",
]
