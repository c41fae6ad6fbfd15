"""Every PostgreSQL test gets a database of its own (see tests/support/postgres_db.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.config.settings import Settings
from pipeline.sinks.postgres.migrate import apply_migrations
from pipeline.sinks.postgres.store import PostgresStore
from tests.support.postgres_db import temporary_database


@pytest.fixture
def fresh_db(settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a new, empty database (dropped after the test)."""
    with temporary_database(settings) as db:
        yield db


@pytest.fixture
def migrated_db(fresh_db: Settings) -> Settings:
    apply_migrations(fresh_db)
    return fresh_db


@pytest.fixture
def store(migrated_db: Settings) -> Iterator[PostgresStore]:
    with PostgresStore(migrated_db) as s:
        yield s
