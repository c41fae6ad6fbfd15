"""Index templates and mappings: the bodies ``templates.ensure_templates`` puts (pure, no client).

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
* an event field is indexed only if a dashboard, the status command or a plausible filter
  uses it: ``page_url`` (every distinct query string a new term), ``event_id`` (the same
  value as ``_id``), ``schema_version``, ``ingested_at`` and the Kafka coordinates are
  kept in ``_source`` only, so they are shown with the document but cost no inverted index
  or doc values; ``order_id`` is searchable without doc values (found, never grouped by).
  ``page_path`` (keyword) is what pages are grouped by, and prefix/wildcard queries work
  on keywords. ``search_query`` is free text, so ``text`` with a ``keyword`` subfield for
  the top-searches chart. A ``text`` subfield on ``page_url`` was measured once too
  (see ``docs/decisions.md``): CPU on every event for a search nobody runs.
* sessions are ``dynamic: strict`` too, with one property per column of the session row
  the PostgreSQL sink returns (the document is that row), generated from the table of
  session columns (``pipeline.sessions.columns``), which gives each its OpenSearch type.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pipeline.contract.names import IndexNames
from pipeline.errors import ConfigError
from pipeline.sessions.columns import document_columns

MAPPING_VERSION: Final = 2
"""Bumped with every mapping change; stored in each index's ``_meta`` and checked by the sink."""
WRITABLE_MAPPING_VERSIONS: Final[dict[str, frozenset[int]]] = {
    "events": frozenset({1, 2}),
    "sessions": frozenset({1, 2}),
}
"""Index mappings the sink may write into. Version 1 indexed more event fields than 2 (which
keeps the event's id, URL, version and Kafka coordinates in ``_source`` only): documents
written now fit it, so a month created under version 1 is written on to its end."""

DEFAULT_EVENT_SHARDS: Final = 1
"""``bench_opensearch_index.py --shards 1,2 --concurrency 1,2``: 2 shards (and 2 parallel
requests) gained nothing measurable on the 2-core machine, where OpenSearch is CPU-bound,
not shard-bound; one shard per month is also ample for one shop's volume (a shard holds
tens of GiB) and keeps a single node's shard count low."""
DEFAULT_SESSION_SHARDS: Final = 1
DEFAULT_REFRESH_INTERVAL: Final = "1s"
"""How soon a write becomes searchable: the freshness a dashboard sees is this plus the
consumer's batch time. 1 s (OpenSearch's own default) keeps the newest events visible
within about 2 s; a longer interval builds fewer, larger segments and costs OpenSearch less
CPU per document (measured in ``docs/decisions.md``), so ``pipeline schema
--refresh-interval`` trades freshness for that saving. Tests refresh explicitly."""
_REFRESH_INTERVAL: Final = re.compile(r"-1|[1-9][0-9]*(ms|s|m)")


def check_refresh_interval(value: str) -> str:
    """``value`` if it is a refresh interval this project sets: a positive whole number of
    milliseconds, seconds or minutes (``500ms``, ``1s``, ``1m``), or ``-1`` (never on its own).

    Checked before anything is sent, so a typo is one clear error rather than a cluster
    setting OpenSearch refuses half-way through putting the templates.
    """
    if not _REFRESH_INTERVAL.fullmatch(value):
        raise ConfigError(f"{value!r} is not an interval such as 500ms, 1s, 30s or 1m (or -1: never)")
    return value


TEMPLATE_PRIORITY: Final = 200
"""Above the priority of built-in templates (100), so ours win on our patterns."""

OWNER: Final = "clickstream-pipeline"
"""Stored in every index's ``_meta``: the sink writes only into indices our templates shaped."""


_KEYWORD: Final = {"type": "keyword"}
_DATE: Final = {"type": "date"}
_DOUBLE: Final = {"type": "double"}

_STORED_ONLY: Final = {"index": False, "doc_values": False}
"""Kept in ``_source`` (shown with the document), neither searchable nor aggregatable: no
inverted index and no doc values to build and merge for it."""

EVENT_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    # every field of pipeline.contract.event.Event, in contract order
    "event_id": {"type": "keyword", **_STORED_ONLY},  # the document's _id: found as `_id:<uuid>`
    "schema_version": {"type": "short", **_STORED_ONLY},
    "event_type": _KEYWORD,
    "occurred_at": _DATE,
    "user_id": _KEYWORD,
    "session_id": _KEYWORD,
    "page_url": {"type": "keyword", **_STORED_ONLY},  # searched and grouped by as page_path
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
    "order_id": {"type": "keyword", "doc_values": False},  # looked up, never grouped by (one per purchase)
    "revenue": _DOUBLE,
    # added by the sink: where the event came from, for reading one document, not for queries
    "page_path": _KEYWORD,
    "ingested_at": {"type": "date", **_STORED_ONLY},
    "kafka_partition": {"type": "integer", **_STORED_ONLY},
    "kafka_offset": {"type": "long", **_STORED_ONLY},
}

SESSION_PROPERTIES: Final[dict[str, dict[str, Any]]] = {c.name: {"type": c.opensearch} for c in document_columns()}
"""Every column of a session document (the ``sessions`` table's, without the merge state), from
the table of session columns: a column is declared there once, with its OpenSearch type."""


def meta(kind: str) -> dict[str, Any]:
    """What ``templates.check_index`` looks for in an index's mapping."""
    return {"owner": OWNER, "kind": kind, "mapping_version": MAPPING_VERSION}


def settings_component_body(*, replicas: int, refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> dict[str, Any]:
    """Settings shared by events and sessions: replicas depend on the cluster, not the index."""
    return {
        "template": {"settings": {"index": {"number_of_replicas": replicas, "refresh_interval": refresh_interval}}},
        "_meta": meta("settings"),
    }


def events_component_body() -> dict[str, Any]:
    return {
        "template": {"mappings": {"dynamic": "strict", "_meta": meta("events"), "properties": EVENT_PROPERTIES}},
        "_meta": meta("events"),
    }


def sessions_component_body() -> dict[str, Any]:
    return {
        "template": {"mappings": {"dynamic": "strict", "_meta": meta("sessions"), "properties": SESSION_PROPERTIES}},
        "_meta": meta("sessions"),
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
        "_meta": meta("events"),
    }


def sessions_template_body(names: IndexNames, *, shards: int = DEFAULT_SESSION_SHARDS) -> dict[str, Any]:
    return {
        "index_patterns": [names.sessions_pattern],
        "priority": TEMPLATE_PRIORITY,
        "composed_of": [names.settings_component, names.sessions_component],
        "template": {"settings": {"index": {"number_of_shards": shards}}},
        "_meta": meta("sessions"),
    }


def replicas_for(data_nodes: int) -> int:
    """One replica when there is a second node to hold it (Aiven: 3 nodes), else none.

    A replica on a single node can never be allocated and would leave every index
    yellow; more than one replica doubles the indexing work again for data that
    PostgreSQL and Kafka can rebuild anyway.
    """
    return max(0, min(1, data_nodes - 1))
