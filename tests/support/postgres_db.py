"""A private, throw-away PostgreSQL database per test (or benchmark sink set), on the shared local server.

Why a database and not a schema: the pipeline's SQL uses unqualified names in the public
schema, exactly as in production, and several engineers' tests run against the same server
at once. A fresh database per test gives each one its own ``events``, ``sessions`` and
``schema_migrations`` without any of them knowing it is a test.

The database is locked down like a production one (PUBLIC may neither connect nor create
temporary tables; only the application role gets CONNECT), so a test proves that the
migrations grant the application role everything it needs, and nothing works by accident.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from infra.uris import with_database
from pipeline.config.secret import Secret
from pipeline.config.settings import Settings

DATABASE_PREFIX = "clickstream_"
"""Private databases are ``clickstream_<world id>``: tests' ids start with ``t``, benchmarks' with ``b``."""


def settings_for_database(settings: Settings, database: str) -> Settings:
    """Settings whose application and admin URIs both point at ``database``."""
    postgres = dataclasses.replace(
        settings.postgres,
        app_uri=Secret(with_database(settings.postgres.app_uri.reveal(), database)),
        admin_uri=Secret(with_database(settings.postgres.admin_uri.reveal(), database)),
    )
    return dataclasses.replace(settings, postgres=postgres)


def app_user(settings: Settings) -> str:
    """The user of the application URI, read here rather than from the pipeline, for tests that check its rights."""
    user = urlsplit(settings.postgres.app_uri.reveal()).username
    assert user, "the application URI has no user"
    return unquote(user)


@contextmanager
def temporary_database(settings: Settings, name: str | None = None) -> Iterator[Settings]:
    """Create ``name`` (default ``clickstream_t<random>``), yield settings for it, drop it (connections or not)."""
    name = name or f"{DATABASE_PREFIX}t{uuid.uuid4().hex[:16]}"
    database = sql.Identifier(name)
    with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(database))
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(app_user(settings)))
        )
    try:
        yield settings_for_database(settings, name)
    finally:
        drop_database(settings, name)


def drop_database(settings: Settings, name: str) -> None:
    """Drop ``name`` if it exists, closing any connection still open to it."""
    with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
