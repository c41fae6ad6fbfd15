"""How fresh each store is: the newest event time in PostgreSQL and in OpenSearch, and how far behind now.

Event time (``occurred_at``), not ingestion time: it answers "up to when does this store
know what happened". Both are read with the pipeline's own credentials (the application
role, the pipeline's OpenSearch user), which may read exactly these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from opensearchpy.exceptions import OpenSearchException, TransportError

from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.errors import ServiceError, first_line
from pipeline.sinks.opensearch.failures import service_error
from pipeline.sinks.opensearch_client import opensearch_client


@dataclass(frozen=True)
class Freshness:
    store: str
    newest_event: dt.datetime | None
    now: dt.datetime
    error: str | None = None

    @property
    def behind_s(self) -> float | None:
        return None if self.newest_event is None else (self.now - self.newest_event).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "newest_event": None if self.newest_event is None else _iso(self.newest_event),
            "behind_s": None if self.behind_s is None else round(self.behind_s, 3),
            "error": self.error,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def postgres_newest(settings: Settings) -> dt.datetime | None:
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=10) as conn:
            row = conn.execute("SELECT max(occurred_at) FROM events").fetchone()
    except psycopg.errors.UndefinedTable:
        raise ServiceError("PostgreSQL has no events table yet; run `pipeline schema`") from None
    except psycopg.Error as exc:
        raise ServiceError(f"PostgreSQL: {first_line(exc)}") from None
    return None if row is None else row[0]


def opensearch_newest(settings: Settings, index_prefix: str) -> dt.datetime | None:
    alias = IndexNames(index_prefix).events_alias
    client = opensearch_client(settings.opensearch, "admin", timeout=15)
    try:
        answer = client.search(index=alias, body={"size": 0, "aggs": {"newest": {"max": {"field": "occurred_at"}}}})
    except TransportError as exc:
        if exc.status_code == 404:
            raise ServiceError(f"OpenSearch has no {alias} index yet; run `pipeline schema`") from None
        raise service_error(exc, f"reading the newest event of {alias}") from None
    except OpenSearchException as exc:
        raise service_error(exc, f"reading the newest event of {alias}") from None
    finally:
        client.close()
    millis = answer.get("aggregations", {}).get("newest", {}).get("value")
    return None if millis is None else dt.datetime.fromtimestamp(millis / 1000, dt.UTC)


def freshness(settings: Settings, index_prefix: str, *, now: dt.datetime | None = None) -> list[Freshness]:
    """One entry per store; a store that cannot be read says why instead of failing the others."""
    now = now or dt.datetime.now(dt.UTC)
    out = []
    readers: tuple[tuple[str, Callable[[], dt.datetime | None]], ...] = (
        ("PostgreSQL", lambda: postgres_newest(settings)),
        ("OpenSearch", lambda: opensearch_newest(settings, index_prefix)),
    )
    for store, read in readers:
        try:
            out.append(Freshness(store, read(), now))
        except ServiceError as exc:
            out.append(Freshness(store, None, now, str(exc)))
    return out
