"""Migrations on a real server: applied once, re-runs are no-ops, history is guarded, grants are exact."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path

import psycopg
import pytest

from pipeline.config.settings import Settings
from pipeline.sinks.postgres.migrate import MigrationError, apply_migrations
from tests.integration.postgres.session_events import T0, make_event
from tests.support.postgres_db import app_user
from tests.support.truth import path_of

MIGRATIONS = Path(__file__).resolve().parents[3] / "pipeline" / "sinks" / "postgres" / "migrations"
RELEASED = [
    "0001_events",
    "0002_sessions",
    "0003_views",
    "0004_app_role_grants",
    "0005_event_document_version",
]
"""Migrations already applied somewhere: never edited, never removed, never renumbered."""
EXPECTED_LABELS = sorted(p.stem for p in MIGRATIONS.glob("*.sql"))
NEWEST = EXPECTED_LABELS[-1][:4]


def history(db: Settings) -> list[tuple[int, str, str, object]]:
    with psycopg.connect(db.postgres.conninfo("admin")) as conn:
        return conn.execute(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()  # type: ignore[return-value]


def test_migrations_apply_once_and_a_rerun_is_a_no_op(fresh_db: Settings) -> None:
    assert EXPECTED_LABELS[: len(RELEASED)] == RELEASED

    assert apply_migrations(fresh_db) == EXPECTED_LABELS
    first = history(fresh_db)
    assert [(v, n) for v, n, _, _ in first] == [(int(label[:4]), label[5:]) for label in EXPECTED_LABELS]
    for (_version, _name, checksum, _), label in zip(first, EXPECTED_LABELS, strict=True):
        assert checksum == hashlib.sha256((MIGRATIONS / f"{label}.sql").read_bytes()).hexdigest(), label

    assert apply_migrations(fresh_db) == []
    assert history(fresh_db) == first  # same rows, same applied_at: nothing re-ran


def test_the_timescaledb_switch_is_obeyed_not_guessed(fresh_db: Settings) -> None:
    """Switched on, a server without TimescaleDB (Debian's) is one clear error and nothing is applied."""
    wanted = dataclasses.replace(fresh_db, postgres=dataclasses.replace(fresh_db.postgres, timescaledb=True))
    with pytest.raises(MigrationError, match="postgres_timescaledb is 'true' but this PostgreSQL server offers no"):
        apply_migrations(wanted)
    assert history(fresh_db) == []
    assert apply_migrations(fresh_db) == EXPECTED_LABELS  # switched off: plain tables


def test_an_applied_migration_that_changed_is_refused(migrated_db: Settings) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'not-the-file' WHERE version = 2")
    with pytest.raises(MigrationError, match="0002_sessions was changed after it was applied"):
        apply_migrations(migrated_db)


def test_a_migration_older_than_the_newest_applied_one_is_refused(migrated_db: Settings) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 3")
    with pytest.raises(MigrationError, match=f"0003_views are older than the applied {NEWEST}"):
        apply_migrations(migrated_db)


def test_two_concurrent_runs_apply_each_migration_exactly_once(fresh_db: Settings) -> None:
    start = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            results.append(apply_migrations(fresh_db))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results, key=len) == [[], EXPECTED_LABELS]
    assert [v for v, *_ in history(fresh_db)] == list(range(1, len(EXPECTED_LABELS) + 1))


def test_the_app_role_has_exactly_the_privileges_the_pipeline_needs(migrated_db: Settings) -> None:
    role = app_user(migrated_db)
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as admin:
        grants = set(
            admin.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_schema = 'public'",
                [role],
            ).fetchall()
        )
        database = admin.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        db_privileges = admin.execute(
            "SELECT has_database_privilege(%(r)s, %(d)s, 'CONNECT'), has_database_privilege(%(r)s, %(d)s, 'TEMPORARY'),"
            " has_database_privilege(%(r)s, %(d)s, 'CREATE'), has_schema_privilege(%(r)s, 'public', 'USAGE'),"
            " has_schema_privilege(%(r)s, 'public', 'CREATE')",
            {"r": role, "d": database},
        ).fetchone()
        sequence_privileges = admin.execute(
            "SELECT has_sequence_privilege(%(r)s, 'event_document_version', 'USAGE'),"
            " has_sequence_privilege(%(r)s, 'event_document_version', 'SELECT'),"
            " has_sequence_privilege(%(r)s, 'event_document_version', 'UPDATE')",
            {"r": role},
        ).fetchone()
    assert grants == {
        ("events", "SELECT"),
        ("events", "INSERT"),
        ("sessions", "SELECT"),
        ("sessions", "INSERT"),
        ("sessions", "UPDATE"),
        ("stats_per_minute", "SELECT"),
        ("stats_per_hour", "SELECT"),
        ("top_pages", "SELECT"),
    }
    assert db_privileges == (True, True, False, True, False)
    assert sequence_privileges == (True, False, False)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DROP TABLE events",
        "DELETE FROM events",
        "UPDATE events SET country = 'FR'",
        "TRUNCATE sessions",
        "DELETE FROM sessions",
        "ALTER TABLE sessions ADD COLUMN x int",
        "SELECT * FROM schema_migrations",
        "CREATE VIEW v AS SELECT 1",
        "SELECT setval('event_document_version', 1)",
    ],
)
def test_the_app_role_cannot(migrated_db: Settings, statement: str) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("app")) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement)


def test_the_app_role_can_insert_events_and_read_the_views(migrated_db: Settings) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("app")) as app:
        app.execute(
            "INSERT INTO events (event_id, schema_version, event_type, occurred_at, user_id, session_id, page_url,"
            " device_type, browser, os, country, ingested_at, kafka_partition, kafka_offset)"
            " VALUES (gen_random_uuid(), 1, 'page_view', now(), 'u', 's', 'https://x.example/a', 'mobile', 'b', 'o',"
            " 'DE', now(), 0, 0)"
        )
        assert app.execute("SELECT count(*) FROM events").fetchone() == (1,)
        for view in ("stats_per_minute", "stats_per_hour", "top_pages"):
            app.execute(f"SELECT * FROM {view}").fetchall()  # noqa: S608 - fixed names


@pytest.mark.parametrize(
    "path",
    ["", "/", "?q=1", "#top", "/product/42", "/product/42?ref=nav#reviews", "/a/b/", "/search?q=a/b", "/x;y=1/z"],
)
def test_page_path_is_the_path_of_the_url(migrated_db: Settings, path: str) -> None:
    event = make_event("s-path", "page_view", T0, path=path)
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as conn:
        conn.execute(
            "INSERT INTO events (event_id, schema_version, event_type, occurred_at, user_id, session_id, page_url,"
            " device_type, browser, os, country, ingested_at, kafka_partition, kafka_offset)"
            " VALUES (%s, 1, 'page_view', %s, 'u', 's', %s, 'desktop', 'b', 'o', 'DE', now(), 0, 0)",
            [event.event_id, event.occurred_at, event.page_url],
        )
        stored = conn.execute("SELECT page_path FROM events").fetchone()
    assert stored == (path_of(event.page_url),)


def test_unknown_event_types_are_rejected_by_the_table(migrated_db: Settings) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO events (event_id, schema_version, event_type, occurred_at, user_id, session_id,"
                " page_url, device_type, browser, os, country, ingested_at, kafka_partition, kafka_offset)"
                " VALUES (gen_random_uuid(), 1, 'hover', now(), 'u', 's', 'https://x.example/', 'desktop',"
                " 'b', 'o', 'DE', now(), 0, 0)"
            )
