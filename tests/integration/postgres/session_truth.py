"""Hand-built events and the session metrics they must produce, computed the plain way.

Deliberately independent of the SQL under test: sorting, counting and summing in Python
loops a reader can check by eye against the definitions in pipeline/sessions/metrics.sql.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pipeline.contract.event import Event
from pipeline.sinks.batch import Envelope

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
HOST = "https://shop.example.com"

# The metric columns of a session row, in table order (what expected_sessions computes).
METRICS = (
    "session_id",
    "user_id",
    "started_at",
    "ended_at",
    "duration_s",
    "events",
    "page_views",
    "unique_pages",
    "clicks",
    "searches",
    "add_to_carts",
    "purchases",
    "revenue",
    "landing_page",
    "exit_page",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "device_type",
    "browser",
    "os",
    "country",
    "converted",
    "is_engaged",
    "is_bounce",
)
# Columns that are bookkeeping, not metrics: compared separately.
BOOKKEEPING = ("version", "updated_at")
# What the sink returns for a session (the OpenSearch document): metrics and bookkeeping,
# none of the table's internal merge-state columns.
DOCUMENT = (*METRICS, *BOOKKEEPING)


def at(seconds: float) -> dt.datetime:
    """T0 plus a number of seconds, at millisecond precision like the contract."""
    return T0 + dt.timedelta(milliseconds=round(seconds * 1000))


def event_id(n: int) -> str:
    """A valid, readable event id whose order is the order of ``n`` (for tie-break tests)."""
    return str(uuid.UUID(int=n))


def make_event(
    session_id: str,
    event_type: str,
    occurred_at: dt.datetime,
    *,
    path: str = "/",
    eid: str | None = None,
    user_id: str | None = None,
    referrer: str | None = None,
    utm: tuple[str | None, str | None, str | None] = (None, None, None),
    device: tuple[str, str, str] = ("desktop", "Firefox", "Linux"),
    country: str = "DE",
    price: str = "10.00",
    revenue: str | None = None,
) -> Event:
    """A contract-valid event; the type-specific fields are filled as the contract requires."""
    money = event_type in ("add_to_cart", "purchase")
    return Event(
        event_id=eid or str(uuid.uuid4()),
        schema_version=1,
        event_type=event_type,  # type: ignore[arg-type]
        occurred_at=occurred_at,
        user_id=user_id or f"user-of-{session_id}",
        session_id=session_id,
        page_url=HOST + path,
        referrer=referrer,
        utm_source=utm[0],
        utm_medium=utm[1],
        utm_campaign=utm[2],
        device_type=device[0],  # type: ignore[arg-type]
        browser=device[1],
        os=device[2],
        country=country,
        element_id="add-to-cart-button" if event_type == "click" else None,
        search_query="red shoes" if event_type == "search" else None,
        product_id="p-42" if money else None,
        price=Decimal(price) if money else None,
        order_id="o-1" if event_type == "purchase" else None,
        revenue=Decimal(revenue or price) if event_type == "purchase" else None,
    )


def envelopes(events: Iterable[Event], *, partition: int = 0, first_offset: int = 0) -> list[Envelope]:
    return [Envelope(e, partition, first_offset + i, T0) for i, e in enumerate(events)]


def path_of(url: str) -> str:
    """The URL's path; '/' when it has none."""
    return urlsplit(url).path or "/"


def expected_sessions(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """session_id -> expected ``sessions`` row (without version/updated_at), duplicates removed."""
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e.event_id, e)
    by_session: dict[str, list[Event]] = defaultdict(list)
    for e in unique.values():
        by_session[e.session_id].append(e)
    return {sid: _session(evs) for sid, evs in by_session.items()}


def _session(evs: list[Event]) -> dict[str, Any]:
    evs = sorted(evs, key=lambda e: (e.occurred_at, e.event_id))
    first, last = evs[0], evs[-1]
    page_views = [e for e in evs if e.event_type == "page_view"]
    purchases = [e for e in evs if e.event_type == "purchase"]
    duration = Decimal((last.occurred_at - first.occurred_at) // dt.timedelta(milliseconds=1)) / 1000
    converted = len(purchases) > 0
    engaged = duration >= 10 or len(page_views) >= 2 or converted
    revenue = Decimal(0)
    for p in purchases:
        assert p.revenue is not None
        revenue += p.revenue
    return {
        "session_id": first.session_id,
        "user_id": first.user_id,
        "started_at": first.occurred_at,
        "ended_at": last.occurred_at,
        "duration_s": duration,
        "events": len(evs),
        "page_views": len(page_views),
        "unique_pages": len({path_of(e.page_url) for e in page_views}),
        "clicks": sum(1 for e in evs if e.event_type == "click"),
        "searches": sum(1 for e in evs if e.event_type == "search"),
        "add_to_carts": sum(1 for e in evs if e.event_type == "add_to_cart"),
        "purchases": len(purchases),
        "revenue": revenue,
        "landing_page": path_of(page_views[0].page_url) if page_views else None,
        "exit_page": path_of(page_views[-1].page_url) if page_views else None,
        "referrer": first.referrer,
        "utm_source": first.utm_source,
        "utm_medium": first.utm_medium,
        "utm_campaign": first.utm_campaign,
        "device_type": first.device_type,
        "browser": first.browser,
        "os": first.os,
        "country": first.country,
        "converted": converted,
        "is_engaged": engaged,
        "is_bounce": not engaged,
    }


def metrics_of(row: dict[str, Any]) -> dict[str, Any]:
    """The metric columns of a ``sessions`` row (no bookkeeping, no merge state)."""
    return {k: row[k] for k in METRICS}


def document_of(row: dict[str, Any]) -> dict[str, Any]:
    """The public columns of a ``sessions`` row, as the sink returns them."""
    return {k: row[k] for k in DOCUMENT}
