"""Index names, composable index templates and the indices they create.

Why explicit templates: left to dynamic mapping, OpenSearch would map every string as
``text`` plus a ``.keyword`` subfield (twice the indexing work, and terms aggregations on
the wrong field), money as ``float`` and timestamps only by luck. The events mapping is
``dynamic: strict`` because the event contract is fixed: a field the mapping does not
know is a bug to surface, not a column to invent.

Layout (``<p>`` is the index prefix, ``clickstream`` in production; tests use a random
one so they never touch each other's data):

* events: monthly indices ``<p>-events-YYYY.MM`` matched by the template pattern
  ``<p>-events-*``; the template adds every new month to the alias ``<p>-events``, which
  is what dashboards and searches use. The month comes from the event's own
  ``occurred_at`` (see :meth:`IndexNames.events_index`), never from the clock, so
  re-indexing an event lands on the same ``_id`` in the same index: idempotent.
  Monthly rather than one index because retention is then ``DELETE`` of an old month
  (no delete-by-query) and a mapping change only affects months created after it.
  Monthly rather than daily because the decoder accepts events up to 30 days old, so a
  write touches at most two indices, and a single node is not drowned in small shards.
* sessions: one index ``<p>-sessions-v1`` behind the write alias ``<p>-sessions``.
  A session is updated in place (external versions from PostgreSQL), so it cannot be
  split by time; the ``-v1`` index behind an alias lets a future mapping change
  reindex into ``-v2`` and move the alias without the writers noticing.

Mapping choices worth a sentence:

* money (``price``, ``revenue``) is ``double``: ``scaled_float`` needs the mapper-extras
  module, which the local distribution lacks, and ``keyword`` would rule out sums and
  ranges. A double holds every cent value exactly up to 2^53 cents (the contract caps
  revenue at 10^9) and ``_source`` keeps the exact digits (``49.90``); sums over many
  documents may be off in the last cent, so exact money figures come from PostgreSQL.
* ``page_url`` is ``keyword`` only: a ``text`` subfield cost ~15% more OpenSearch CPU
  per event when measured (median of 3 runs, 0.055 -> 0.063 CPU-seconds per 1,000
  events), the scarcest resource on the 2-core target, for a full-text search over
  URLs nobody asked for. ``page_path`` (keyword) is what pages are grouped by, and
  prefix/wildcard queries work on keywords. ``search_query`` is free text, so ``text``
  with a ``keyword`` subfield.
* sessions are ``dynamic: strict`` too, with one property per column of the session row
  the PostgreSQL sink returns (the document is that row). A column added there without a
  mapping here fails a unit test, and at run time fails loudly as an ``IndexingError``
  instead of being mapped by guesswork.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from pipeline.config.settings import Settings
from pipeline.contract.names import DEFAULT_INDEX_PREFIX, IndexNames
from pipeline.errors import ConfigError, ServiceError, SinkUnavailable
from pipeline.sinks.opensearch_client import opensearch_client

MAPPING_VERSION: Final = 1
"""Bumped with every mapping change; stored in each index's ``_meta`` and checked by the sink."""

DEFAULT_EVENT_SHARDS: Final = 1
"""``bench_opensearch_index.py --shards 1,2 --concurrency 1,2``: 2 shards (and 2 parallel
requests) gained nothing measurable on the 2-core machine, where OpenSearch is CPU-bound,
not shard-bound; one shard per month is also ample for one shop's volume (a shard holds
tens of GiB) and keeps a single node's shard count low."""
DEFAULT_SESSION_SHARDS: Final = 1
DEFAULT_REFRESH_INTERVAL: Final = "5s"
"""How soon a write becomes searchable. 5 s instead of OpenSearch's 1 s default: measured
with the benchmark (``--refresh 1s,5s,30s``, three round-robin runs), 1 s cost 13-25% more
OpenSearch CPU per event than 5 s (more, smaller segments to build and merge), and 30 s
saved nothing measurable beyond that. CPU is what the 2-core target lacks, and a
dashboard 5 s behind is still live. Configurable per call of :func:`ensure_templates`;
tests refresh explicitly."""
TEMPLATE_PRIORITY: Final = 200
"""Above the priority of built-in templates (100), so ours win on our patterns."""

_UTC: Final = dt.UTC
_OWNER: Final = "clickstream-pipeline"


# --- bodies (pure) -----------------------------------------------------------------------

_KEYWORD: Final = {"type": "keyword"}
_DATE: Final = {"type": "date"}
_BOOLEAN: Final = {"type": "boolean"}
_INTEGER: Final = {"type": "integer"}
_LONG: Final = {"type": "long"}
_DOUBLE: Final = {"type": "double"}

EVENT_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    # every field of pipeline.contract.event.Event, in contract order
    "event_id": _KEYWORD,
    "schema_version": {"type": "short"},
    "event_type": _KEYWORD,
    "occurred_at": _DATE,
    "user_id": _KEYWORD,
    "session_id": _KEYWORD,
    "page_url": _KEYWORD,
    "referrer": _KEYWORD,
    "utm_source": _KEYWORD,
    "utm_medium": _KEYWORD,
    "utm_campaign": _KEYWORD,
    "device_type": _KEYWORD,
    "browser": _KEYWORD,
    "os": _KEYWORD,
    "country": _KEYWORD,
    "element_id": _KEYWORD,
    "search_query": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
    "product_id": _KEYWORD,
    "price": _DOUBLE,
    "order_id": _KEYWORD,
    "revenue": _DOUBLE,
    # added by the sink
    "page_path": _KEYWORD,
    "ingested_at": _DATE,
    "kafka_partition": _INTEGER,
    "kafka_offset": _LONG,
}

SESSION_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    # every column of a session document: the public columns of the PostgreSQL ``sessions``
    # table that the upsert returns (pipeline/sessions/metrics.sql, its final SELECT; a unit
    # test holds them equal). The table's merge-state columns are never indexed.
    "session_id": _KEYWORD,
    "user_id": _KEYWORD,
    "started_at": _DATE,
    "ended_at": _DATE,
    "duration_s": _DOUBLE,
    "events": _INTEGER,
    "page_views": _INTEGER,
    "unique_pages": _INTEGER,
    "clicks": _INTEGER,
    "searches": _INTEGER,
    "add_to_carts": _INTEGER,
    "purchases": _INTEGER,
    "revenue": _DOUBLE,
    "landing_page": _KEYWORD,
    "exit_page": _KEYWORD,
    "referrer": _KEYWORD,
    "utm_source": _KEYWORD,
    "utm_medium": _KEYWORD,
    "utm_campaign": _KEYWORD,
    "device_type": _KEYWORD,
    "browser": _KEYWORD,
    "os": _KEYWORD,
    "country": _KEYWORD,
    "converted": _BOOLEAN,
    "is_engaged": _BOOLEAN,
    "is_bounce": _BOOLEAN,
    "version": _LONG,
    "updated_at": _DATE,
}


def _meta(kind: str) -> dict[str, Any]:
    return {"owner": _OWNER, "kind": kind, "mapping_version": MAPPING_VERSION}


def settings_component_body(*, replicas: int, refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> dict[str, Any]:
    """Settings shared by events and sessions: replicas depend on the cluster, not the index."""
    return {
        "template": {"settings": {"index": {"number_of_replicas": replicas, "refresh_interval": refresh_interval}}},
        "_meta": _meta("settings"),
    }


def events_component_body() -> dict[str, Any]:
    return {
        "template": {"mappings": {"dynamic": "strict", "_meta": _meta("events"), "properties": EVENT_PROPERTIES}},
        "_meta": _meta("events"),
    }


def sessions_component_body() -> dict[str, Any]:
    return {
        "template": {"mappings": {"dynamic": "strict", "_meta": _meta("sessions"), "properties": SESSION_PROPERTIES}},
        "_meta": _meta("sessions"),
    }


def events_template_body(names: IndexNames, *, shards: int = DEFAULT_EVENT_SHARDS) -> dict[str, Any]:
    return {
        "index_patterns": [names.events_pattern],
        "priority": TEMPLATE_PRIORITY,
        "composed_of": [names.settings_component, names.events_component],
        "template": {
            "settings": {"index": {"number_of_shards": shards}},
            "aliases": {names.events_alias: {}},
        },
        "_meta": _meta("events"),
    }


def sessions_template_body(names: IndexNames, *, shards: int = DEFAULT_SESSION_SHARDS) -> dict[str, Any]:
    return {
        "index_patterns": [names.sessions_pattern],
        "priority": TEMPLATE_PRIORITY,
        "composed_of": [names.settings_component, names.sessions_component],
        "template": {"settings": {"index": {"number_of_shards": shards}}},
        "_meta": _meta("sessions"),
    }


def replicas_for(data_nodes: int) -> int:
    """One replica when there is a second node to hold it (Aiven: 3 nodes), else none.

    A replica on a single node can never be allocated and would leave every index
    yellow; more than one replica doubles the indexing work again for data that
    PostgreSQL and Kafka can rebuild anyway.
    """
    return max(0, min(1, data_nodes - 1))


# --- I/O -----------------------------------------------------------------------------------


def service_error(exc: Exception, doing: str) -> ServiceError:
    """A typed, one-line error for an OpenSearch failure; transient ones become ``SinkUnavailable``.

    The text carries the status and OpenSearch's error type, never the URI (the client
    was built by ``connect_opensearch``, whose host list holds no credentials anyway).
    """
    if isinstance(exc, OSConnectionError):
        return SinkUnavailable(f"OpenSearch unreachable while {doing}: {type(exc).__name__}")
    if isinstance(exc, TransportError):
        status = exc.status_code
        kind = error_type(exc.info) or exc.error
        if isinstance(status, int) and (status == 429 or status >= 500):
            return SinkUnavailable(f"OpenSearch busy while {doing}: HTTP {status} {kind}")
        return ServiceError(f"OpenSearch refused {doing}: HTTP {status} {kind}")
    return ServiceError(f"OpenSearch failed while {doing}: {type(exc).__name__}")


def error_type(info: object) -> str | None:
    """``error.type`` from an OpenSearch error body, if it has one."""
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            kind = error.get("type")
            return str(kind) if kind is not None else None
        if isinstance(error, str):
            return error
    return None


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
        if meta.get("owner") != _OWNER or meta.get("kind") != kind or meta.get("mapping_version") != MAPPING_VERSION:
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

    Idempotent: templates are PUT (same body, same result) and existing indices are left
    as they are, so every consumer may call it at start-up. Uses the admin URI because
    templates are cluster-level objects. ``replicas`` defaults to what the cluster can
    hold (:func:`replicas_for`). ``client`` replaces the admin connection (tests, benchmarks).
    """
    names = IndexNames(index_prefix)
    if client is not None:
        _ensure_templates(client, names, replicas, event_shards, session_shards, refresh_interval, now)
        return names
    owned = opensearch_client(settings.opensearch, "admin")
    try:
        _ensure_templates(owned, names, replicas, event_shards, session_shards, refresh_interval, now)
    finally:
        owned.close()
    return names


def _ensure_templates(
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


def delete_all(client: OpenSearch, names: IndexNames) -> None:
    """Remove every index and template of a prefix (tests and benchmarks clean up with it)."""
    for pattern in (names.events_pattern, names.sessions_pattern):
        client.indices.delete(index=pattern, ignore=[404], expand_wildcards="all")
    for template in (names.events_template, names.sessions_template):
        client.indices.delete_index_template(name=template, ignore=[404])
    for component in (names.settings_component, names.events_component, names.sessions_component):
        client.cluster.delete_component_template(name=component, ignore=[404])
