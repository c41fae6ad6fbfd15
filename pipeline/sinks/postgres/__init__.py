"""The PostgreSQL sink: schema migrations (``migrate``) and the batch writer (``store``)."""

from __future__ import annotations

from pipeline.sinks.postgres.migrate import MigrationError, apply_migrations
from pipeline.sinks.postgres.store import PostgresStore, WriteTimings

__all__ = ["MigrationError", "PostgresStore", "WriteTimings", "apply_migrations"]
