"""``pipeline schema``: make both sinks ready. Safe to run any number of times, from any number of processes."""

from __future__ import annotations

from pipeline.config.settings import Settings
from pipeline.sinks.opensearch.templates import ensure_templates
from pipeline.sinks.postgres.migrate import apply_migrations


def prepare_sinks(settings: Settings, *, index_prefix: str) -> str:
    """Apply PostgreSQL migrations (admin role) and OpenSearch templates (admin URI); say what was done."""
    applied = apply_migrations(settings)
    names = ensure_templates(settings, index_prefix)
    migrations = f"applied {', '.join(applied)}" if applied else "already up to date"
    return (f"schema: PostgreSQL migrations {migrations}; "
            f"OpenSearch templates ready for {names.events_alias} and {names.sessions_alias}")
