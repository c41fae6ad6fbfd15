"""Versioned schema migrations for the PostgreSQL sink (`pipeline schema`).

Why hand-rolled instead of a migration framework: the whole job is a dozen lines of
bookkeeping (apply each numbered SQL file once, in its own transaction, remember it with
a checksum) plus two things no framework here knows about: choosing between plain
PostgreSQL and TimescaleDB as the stack output ``postgres_timescaledb`` says, and
granting the application role named in the stack outputs.

How it works:

* Migrations are the files ``migrations/NNNN_name.sql``, applied in version order, each in
  its own transaction together with its row in ``schema_migrations`` (version, name,
  checksum, applied_at), so a failure leaves no half-applied version behind.
* Re-running is a no-op. An applied migration whose file has changed since (checksum of
  the file as written) is an error: a released migration is never edited, a new one is added.
* A session-level ``pg_advisory_lock`` serialises concurrent runs (two consumers started
  at once, a deploy racing a developer); the second waits, then finds nothing to do.
* The files may contain ``{{placeholders}}`` (see :func:`placeholders`) filled from the
  :class:`Flavour` and the application role. With ``postgres_timescaledb`` true the
  extension is created (the run fails if the server has none), ``events`` becomes a
  hypertable on ``occurred_at`` and the time-bucket views use ``time_bucket``; compression
  is only set up when ``SHOW timescaledb.license`` says the edition allows it
  ('timescale', the community licence; the Apache edition has no compression). With it
  false, the same tables and views use core ``date_bin``, whether or not the server
  offers TimescaleDB.

Run with the admin URI: it creates tables, extensions and grants.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final, cast
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from pipeline.config.settings import Settings
from pipeline.errors import PipelineError, ServiceError, first_line

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE: Final = "pipeline.sinks.postgres"
MIGRATIONS_DIR: Final = "migrations"
_FILE_NAME: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

MIGRATION_LOCK_KEY: Final = 0x636C69636B5F6D67  # b"click_mg": an arbitrary constant, unique in this database
"""The advisory-lock key held while migrating (the sink's per-session keys are hashes,
so a collision is as unlikely as any 64-bit hash collision, and would only make one wait)."""

TIMESCALE_COMPRESSION_LICENSES: Final = frozenset({"timescale"})
"""``timescaledb.license`` values whose edition includes compression (not 'apache')."""


class MigrationError(PipelineError):
    """The database's schema history disagrees with the migration files; the message says how."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        """SHA-256 of the file as written (before rendering), so it does not depend on the server."""
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Flavour:
    """What the server offers, decided once per run by :func:`detect_flavour`."""

    timescaledb: bool
    license: str | None = None
    """``SHOW timescaledb.license`` ('apache' or 'timescale'); None on plain PostgreSQL."""

    @property
    def compression(self) -> bool:
        return self.timescaledb and self.license in TIMESCALE_COMPRESSION_LICENSES


def load_migrations() -> list[Migration]:
    """The migration files shipped in the package, in version order; malformed names are errors."""
    folder = resources.files(MIGRATIONS_PACKAGE).joinpath(MIGRATIONS_DIR)
    migrations: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name} is not named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return migrations


def timescaledb_events_sql(license: str) -> str:
    """The TimescaleDB part of migration 0001: ``events`` becomes a hypertable.

    Rendered separately from the plain path so it stays small, readable and testable as
    text. The extension itself is created before any migration runs (see
    :func:`ensure_timescaledb`). ``create_default_indexes => false`` because 0001 creates
    its own (BRIN) ``occurred_at`` index. Compression only where the licence allows it; it
    segments by session so reading one session's events stays cheap on compressed chunks
    (the sink itself never reads older events: it merges only the ones it inserts).
    """
    statements = [
        # The by_range() dimension form (TimescaleDB 2.13+); the older positional
        # (table, column, chunk_time_interval => ...) form is deprecated.
        "SELECT create_hypertable('events', by_range('occurred_at', INTERVAL '1 day'),\n"
        "                         create_default_indexes => false,\n"
        "                         migrate_data => true);",
    ]
    if license in TIMESCALE_COMPRESSION_LICENSES:
        statements += [
            "ALTER TABLE events SET (timescaledb.compress,\n"
            "                        timescaledb.compress_segmentby = 'session_id',\n"
            "                        timescaledb.compress_orderby = 'occurred_at, event_id');",
            "SELECT add_compression_policy('events', INTERVAL '7 days');",
        ]
    else:
        statements.append(
            f"-- timescaledb.license = {license!r}: this edition has no compression; events stay uncompressed."
        )
    return "\n".join(statements) + "\n"


def placeholders(flavour: Flavour, *, app_role: str, database: str) -> dict[str, str]:
    """The values a migration file may refer to as ``{{name}}``; identifiers come quoted."""
    return {
        "app_role": _quote_ident(app_role),
        "database": _quote_ident(database),
        "time_bucket": "time_bucket" if flavour.timescaledb else "date_bin",
        "events_primary_key": "(event_id, occurred_at)" if flavour.timescaledb else "(event_id)",
        "timescaledb_events": timescaledb_events_sql(flavour.license or "apache") if flavour.timescaledb else "",
    }


def render(text: str, values: dict[str, str], *, source: str = "a migration file") -> str:
    """Fill ``{{name}}`` placeholders; an unknown name is an error, never left in the SQL."""

    def substitute(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise MigrationError(f"unknown placeholder {{{{{name}}}}} in {source}")
        return values[name]

    return _PLACEHOLDER.sub(substitute, text)


def app_role_name(settings: Settings) -> str:
    """The application role is the user of the application URI (Aiven and devstack alike)."""
    user = urlsplit(settings.postgres.app_uri.reveal()).username
    if not user:
        raise MigrationError("the PostgreSQL application URI has no user name; cannot grant it privileges")
    return unquote(user)


def apply_migrations(settings: Settings) -> list[str]:
    """Bring the database's schema up to date; returns the labels applied (empty: nothing to do)."""
    try:
        with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True, connect_timeout=15) as conn:
            return migrate(conn, app_role=app_role_name(settings), timescaledb=settings.postgres.timescaledb)
    except psycopg.OperationalError as exc:
        raise ServiceError(f"PostgreSQL (admin) unavailable while migrating: {first_line(exc)}") from None
    except psycopg.Error as exc:
        raise MigrationError(f"migration failed: {first_line(exc)}") from None


def migrate(conn: psycopg.Connection[tuple[object, ...]], *, app_role: str, timescaledb: bool = False) -> list[str]:
    """Apply pending migrations over an autocommit admin connection, holding the migration lock.

    ``timescaledb`` is the stack's choice (``postgres_timescaledb``), not a guess from the server.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection: each migration opens its own transaction")
    migrations = load_migrations()
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY]).fetchone()
    if not (got and got[0]):
        log.info("another process is migrating this database; waiting for it to finish")
        conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    try:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = cast(
            "list[tuple[int, str, str]]",
            conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall(),
        )
        applied = {version: (name, checksum) for version, name, checksum in rows}
        pending = check_history(migrations, applied)
        if not pending:
            return []
        flavour = ensure_timescaledb(conn) if timescaledb else Flavour(timescaledb=False)
        row = conn.execute("SELECT current_database()").fetchone()
        database = str(row[0]) if row else ""
        values = placeholders(flavour, app_role=app_role, database=database)
        done: list[str] = []
        for migration in pending:
            rendered = render(migration.text, values)
            with conn.transaction():
                conn.execute(rendered)  # trusted file text, several statements
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    [migration.version, migration.name, migration.checksum],
                )
            log.info(
                "applied migration %s (%s)", migration.label, "TimescaleDB" if flavour.timescaledb else "PostgreSQL"
            )
            done.append(migration.label)
        return done
    finally:
        # A broken connection has already lost the lock with its session; only unlock a live one.
        if not (conn.closed or conn.broken):
            conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])


def check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> list[Migration]:
    """The migrations still to apply, after checking the applied ones were not edited or skipped."""
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            log.warning("database has migration %04d_%s that this code does not know (newer code?)", version, name)
            continue
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.label} was changed after it was applied "
                f"(checksum {checksum[:12]}… in the database, {migration.checksum[:12]}… in the file); "
                "restore the file and add a new migration for the change"
            )
    pending = [m for m in migrations if m.version not in applied]
    newest = max(applied, default=0)
    late = [m.label for m in pending if m.version < newest]
    if late:
        raise MigrationError(
            f"migration(s) {', '.join(late)} are older than the applied {newest:04d} but were never applied; "
            "renumber them after the newest applied migration"
        )
    return pending


def detect_flavour(conn: psycopg.Connection[tuple[object, ...]]) -> Flavour:
    """TimescaleDB if the extension is installed in this database, with its licence."""
    installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if installed is None:
        return Flavour(timescaledb=False)
    row = conn.execute("SHOW timescaledb.license").fetchone()
    return Flavour(timescaledb=True, license=str(row[0]) if row else None)


def ensure_timescaledb(conn: psycopg.Connection[tuple[object, ...]]) -> Flavour:
    """Create the TimescaleDB extension the stack asked for, then report the flavour.

    Done before the versioned migrations, in its own transaction: it is a capability of the
    server (Aiven has it, Debian's PostgreSQL has not), not a schema change of ours, and
    every later migration renders against the result. A server without it is an error,
    not a silent fall-back: the stack said to use it.
    """
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if available is None:
        raise MigrationError(
            "the stack output postgres_timescaledb is 'true' but this PostgreSQL server offers no TimescaleDB "
            "extension; set clickstream:timescaledb to false and run `pulumi up`, or use a server that has it"
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        raise MigrationError(
            f"TimescaleDB is available but CREATE EXTENSION failed ({first_line(exc)}); "
            "it must be in shared_preload_libraries and the admin user must be allowed to create it"
        ) from None
    return detect_flavour(conn)


def _quote_ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)
