"""PostgreSQL on the local stack: TLS verified against the stack CA, two roles, least privilege."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from pipeline.config.settings import Settings
from pipeline.contract import names
from tests.support.postgres_db import app_user


def test_connection_is_tls_verified_full(settings: Settings) -> None:
    conninfo = settings.postgres.conninfo("app")
    assert "sslmode=verify-full" in conninfo
    with psycopg.connect(conninfo) as conn:
        assert conn.info.pgconn.ssl_in_use
        assert conn.execute("SHOW server_version_num").fetchone()[0] >= "150000"


def test_the_lock_table_has_the_room_the_sink_is_sized_for(settings: Settings) -> None:
    with psycopg.connect(settings.postgres.conninfo("app")) as conn:
        (value,) = conn.execute("SHOW max_locks_per_transaction").fetchone() or ("",)
    assert int(value) == names.MAX_LOCKS_PER_TRANSACTION


def test_plain_text_connection_is_refused(settings: Settings) -> None:
    uri = settings.postgres.conninfo("app").replace("sslmode=verify-full", "sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption|pg_hba"):
        psycopg.connect(uri, connect_timeout=5)


def test_wrong_password_is_refused(settings: Settings) -> None:
    parts = urlsplit(settings.postgres.conninfo("app"))
    user = parts.username
    bad = parts._replace(netloc=f"{user}:not-the-password@{parts.hostname}:{parts.port}").geturl()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_admin_creates_a_table_the_app_role_writes_and_reads(settings: Settings) -> None:
    schema = f"it_{uuid.uuid4().hex[:10]}"
    app_role = app_user(settings)
    with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("CREATE TABLE {}.t (id int PRIMARY KEY, note text)").format(sql.Identifier(schema)))
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(app_role))
        )
        admin.execute(
            sql.SQL("GRANT SELECT, INSERT ON {}.t TO {}").format(sql.Identifier(schema), sql.Identifier(app_role))
        )
    try:
        with psycopg.connect(settings.postgres.conninfo("app")) as app:
            app.execute(sql.SQL("INSERT INTO {}.t VALUES (1, %s)").format(sql.Identifier(schema)), ["é ' \" 🎉"])
            rows = app.execute(sql.SQL("SELECT id, note FROM {}.t").format(sql.Identifier(schema))).fetchall()
        assert rows == [(1, "é ' \" 🎉")]
    finally:
        with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_app_role_cannot_create_tables(settings: Settings) -> None:
    with psycopg.connect(settings.postgres.conninfo("app")) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE public.intruder (id int)")
