"""``pipeline schema``: make both sinks (and Dashboards, where there is one) ready.

Safe to run any number of times, from any number of processes: migrations apply once,
templates are PUT, and the Dashboards import overwrites the same saved-object ids.
"""

from __future__ import annotations

from pipeline.config.settings import Settings
from pipeline.dashboards.importer import ImportResult, import_saved_objects
from pipeline.dashboards.saved_objects import build
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL
from pipeline.sinks.opensearch.templates import ensure_templates
from pipeline.sinks.postgres.migrate import apply_migrations


def import_dashboards(settings: Settings, *, index_prefix: str) -> ImportResult:
    """Import the "Clickstream" dashboard and its objects for ``index_prefix`` into the stack's Dashboards."""
    return import_saved_objects(settings.opensearch, build(index_prefix))


def prepare_sinks(settings: Settings, *, index_prefix: str, refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> str:
    """Apply PostgreSQL migrations (admin role) and OpenSearch templates (admin URI), import the
    dashboards when the stack has OpenSearch Dashboards; say what was done."""
    applied = apply_migrations(settings)
    names = ensure_templates(settings, index_prefix, refresh_interval=refresh_interval)
    migrations = f"applied {', '.join(applied)}" if applied else "already up to date"
    dashboards = (
        import_dashboards(settings, index_prefix=index_prefix).line()
        if settings.opensearch.dashboards_uri
        else "no OpenSearch Dashboards in this stack"
    )
    return (
        f"schema: PostgreSQL migrations {migrations}; "
        f"OpenSearch templates ready for {names.events_alias} and {names.sessions_alias} "
        f"(refresh interval {refresh_interval}); {dashboards}"
    )
