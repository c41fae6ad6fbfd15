"""Reading back what the pipeline wrote, as the admin user of each store, for tests and benchmarks.

Every OpenSearch reader refreshes first: the templates refresh every 5 s by design, and a
reader that asks "what has been written" must see everything indexed before it asked.
"""

from __future__ import annotations

from typing import Any

import psycopg
from opensearchpy import OpenSearch
from psycopg.rows import dict_row

from pipeline.config.settings import Settings


def rows(settings: Settings, query: str, *params: object) -> list[dict[str, Any]]:
    """The rows of one query in the settings' database, as dicts (admin role, so no grant is needed)."""
    with psycopg.connect(settings.postgres.conninfo("admin"), row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(query, params or None).fetchall()


def document_count(client: OpenSearch, index: str, query: dict[str, Any] | None = None) -> int:
    """How many documents ``index`` (an index, alias or pattern) holds, or of them match ``query``."""
    client.indices.refresh(index=index)
    body = {"query": query} if query is not None else None
    return int(client.count(index=index, body=body)["count"])


def documents(client: OpenSearch, index: str, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every document of ``index`` (only ``ids``, when given) by id: the whole hit, ``_version`` and ``_seq_no`` too."""
    client.indices.refresh(index=index)
    query = {"ids": {"values": ids}} if ids is not None else {"match_all": {}}
    body = {"query": query, "version": True, "seq_no_primary_term": True}
    out: dict[str, dict[str, Any]] = {}
    page = client.search(index=index, scroll="1m", size=5000, body=body)
    scroll_id = page["_scroll_id"]
    try:
        while page["hits"]["hits"]:
            out.update((hit["_id"], hit) for hit in page["hits"]["hits"])
            page = client.scroll(scroll_id=scroll_id, scroll="1m")
            scroll_id = page["_scroll_id"]
    finally:
        client.clear_scroll(scroll_id=scroll_id)
    return out
