"""Putting the index templates and creating (and checking) the indices they shape: the I/O.

The bodies themselves are pure and live in ``mappings``; names in
``pipeline.contract.names``. Templates are cluster-level objects, so this runs with the
admin URI, once at start-up (``pipeline schema``) and idempotently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from pipeline.config.settings import Settings
from pipeline.contract.names import DEFAULT_INDEX_PREFIX, IndexNames
from pipeline.errors import ConfigError
from pipeline.sinks.opensearch.failures import error_type, service_error
from pipeline.sinks.opensearch.mappings import (
    DEFAULT_EVENT_SHARDS,
    DEFAULT_REFRESH_INTERVAL,
    DEFAULT_SESSION_SHARDS,
    MAPPING_VERSION,
    OWNER,
    WRITABLE_MAPPING_VERSIONS,
    events_component_body,
    events_template_body,
    replicas_for,
    sessions_component_body,
    sessions_template_body,
    settings_component_body,
)
from pipeline.sinks.opensearch_client import opensearch_client

_UTC: Final = dt.UTC


def default_replicas(client: OpenSearch) -> int:
    try:
        health = client.cluster.health()
    except TransportError as exc:
        raise service_error(exc, "reading cluster health") from None
    return replicas_for(int(health["number_of_data_nodes"]))


def create_index(client: OpenSearch, name: str, body: dict[str, Any] | None = None) -> bool:
    """Create ``name`` (settings and mappings come from the templates); False if it already existed.

    Several consumer processes may race to create the same month: the loser's
    ``resource_already_exists_exception`` is the expected outcome, not an error.
    """
    try:
        client.indices.create(index=name, body=body or {})
    except TransportError as exc:
        if exc.status_code == 400 and error_type(exc.info) == "resource_already_exists_exception":
            return False
        raise service_error(exc, f"creating index {name}") from None
    return True


def check_index(client: OpenSearch, name: str, kind: str) -> None:
    """Refuse to write into an index that our template did not shape.

    Without this, an index created before ``ensure_templates`` ran (or by hand) would
    carry dynamic mappings, and the damage (``text`` ids, ``float`` money) would only show
    much later, in wrong dashboards.
    """
    try:
        mappings = client.indices.get_mapping(index=name)
    except TransportError as exc:
        if exc.status_code == 404:
            raise ConfigError(
                f"OpenSearch index or alias {name} does not exist; run the template setup (ensure_templates) first"
            ) from None
        raise service_error(exc, f"reading the mapping of {name}") from None
    for index, body in mappings.items():
        meta = body.get("mappings", {}).get("_meta", {})
        writable = WRITABLE_MAPPING_VERSIONS.get(kind, frozenset({MAPPING_VERSION}))
        if meta.get("owner") != OWNER or meta.get("kind") != kind or meta.get("mapping_version") not in writable:
            raise ConfigError(
                f"OpenSearch index {index} was not created from the {kind} template "
                f"(mapping version {MAPPING_VERSION}); run the template setup (ensure_templates) "
                "and recreate or reindex that index"
            )


def ensure_templates(
    settings: Settings,
    index_prefix: str = DEFAULT_INDEX_PREFIX,
    *,
    replicas: int | None = None,
    event_shards: int = DEFAULT_EVENT_SHARDS,
    session_shards: int = DEFAULT_SESSION_SHARDS,
    refresh_interval: str = DEFAULT_REFRESH_INTERVAL,
    now: dt.datetime | None = None,
    client: OpenSearch | None = None,
) -> IndexNames:
    """Put the component and index templates, then create the sessions index and this month's events index.

    Idempotent: templates are PUT (same body, same result) and existing indices keep their
    mappings (only their refresh interval follows ``refresh_interval``), so every consumer
    may call it at start-up. Uses the admin URI because
    templates are cluster-level objects. ``replicas`` defaults to what the cluster can
    hold (:func:`replicas_for`). ``client`` replaces the admin connection (tests, benchmarks).
    """
    names = IndexNames(index_prefix)
    if client is not None:
        _put_and_create(client, names, replicas, event_shards, session_shards, refresh_interval, now)
        return names
    owned = opensearch_client(settings.opensearch, "admin")
    try:
        _put_and_create(owned, names, replicas, event_shards, session_shards, refresh_interval, now)
    finally:
        owned.close()
    return names


def _put_and_create(
    client: OpenSearch,
    names: IndexNames,
    replicas: int | None,
    event_shards: int,
    session_shards: int,
    refresh_interval: str,
    now: dt.datetime | None,
) -> None:
    if replicas is None:
        replicas = default_replicas(client)
    if replicas < 0 or event_shards < 1 or session_shards < 1:
        raise ConfigError("OpenSearch replicas must be >= 0 and shards >= 1")
    puts: list[tuple[str, str, dict[str, Any]]] = [
        (
            "component",
            names.settings_component,
            settings_component_body(replicas=replicas, refresh_interval=refresh_interval),
        ),
        ("component", names.events_component, events_component_body()),
        ("component", names.sessions_component, sessions_component_body()),
        ("index", names.events_template, events_template_body(names, shards=event_shards)),
        ("index", names.sessions_template, sessions_template_body(names, shards=session_shards)),
    ]
    for kind, name, body in puts:
        try:
            if kind == "component":
                client.cluster.put_component_template(name=name, body=body)
            else:
                client.indices.put_index_template(name=name, body=body)
        except TransportError as exc:
            raise service_error(exc, f"putting the {kind} template {name}") from None

    create_index(client, names.sessions_index, {"aliases": {names.sessions_alias: {"is_write_index": True}}})
    check_index(client, names.sessions_alias, "sessions")
    month = names.events_index(now or dt.datetime.now(_UTC))
    create_index(client, month)
    check_index(client, month, "events")
    # Templates shape only indices created after them; the interval is a dynamic setting,
    # so the indices that exist already follow the one chosen now.
    existing = f"{names.events_pattern},{names.sessions_pattern}"
    try:
        client.indices.put_settings(index=existing, body={"index": {"refresh_interval": refresh_interval}})
    except TransportError as exc:
        raise service_error(exc, f"setting the refresh interval of {existing}") from None


def delete_all(client: OpenSearch, names: IndexNames) -> None:
    """Remove every index and template of a prefix (tests and benchmarks clean up with it)."""
    for pattern in (names.events_pattern, names.sessions_pattern):
        client.indices.delete(index=pattern, ignore=[404], expand_wildcards="all")
    for template in (names.events_template, names.sessions_template):
        client.indices.delete_index_template(name=template, ignore=[404])
    for component in (names.settings_component, names.events_component, names.sessions_component):
        client.cluster.delete_component_template(name=component, ignore=[404])
