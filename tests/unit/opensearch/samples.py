"""Small, valid events, envelopes and session rows for the OpenSearch tests (unit and integration)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pipeline.contract.event import Event
from pipeline.sinks.batch import Envelope, SessionRow

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 9, 41, 7, 123000, tzinfo=UTC)


def make_event(**overrides: Any) -> Event:
    """A valid purchase event; ``overrides`` replace fields (the caller keeps the contract's type rules)."""
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "purchase",
        "occurred_at": T0,
        "user_id": "u-1",
        "session_id": "s-1",
        "page_url": "https://shop.example.com/checkout/done?order=o-1#thanks",
        "referrer": "https://www.google.com/",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "black-friday",
        "device_type": "mobile",
        "browser": "Chrome",
        "os": "Android",
        "country": "DE",
        "element_id": None,
        "search_query": None,
        "product_id": "p-42",
        "price": Decimal("49.90"),
        "order_id": "o-1",
        "revenue": Decimal("99.80"),
    }
    fields.update(overrides)
    return Event(**fields)


def make_page_view(**overrides: Any) -> Event:
    base: dict[str, Any] = {
        "event_type": "page_view",
        "page_url": "https://shop.example.com/product/42",
        "product_id": None,
        "price": None,
        "order_id": None,
        "revenue": None,
    }
    base.update(overrides)
    return make_event(**base)


def make_search(query: str = "red shoes", **overrides: Any) -> Event:
    base: dict[str, Any] = {
        "event_type": "search",
        "page_url": "https://shop.example.com/search?q=red+shoes",
        "search_query": query,
        "product_id": None,
        "price": None,
        "order_id": None,
        "revenue": None,
    }
    base.update(overrides)
    return make_event(**base)


def envelope(event: Event, partition: int = 3, offset: int = 1234, ingested_at: dt.datetime | None = None) -> Envelope:
    return Envelope(event, partition, offset, ingested_at or T0 + dt.timedelta(seconds=2))


def session_row(session_id: str = "s-1", version: int = 1, **overrides: Any) -> SessionRow:
    """A row shaped like PostgreSQL's ``sessions`` table returns it (datetime, Decimal, int, bool, str)."""
    row: SessionRow = {
        "session_id": session_id,
        "user_id": "u-1",
        "started_at": T0,
        "ended_at": T0 + dt.timedelta(minutes=3, milliseconds=456),
        "duration_s": Decimal("180.456"),
        "events": 5,
        "page_views": 3,
        "unique_pages": 2,
        "clicks": 1,
        "searches": 0,
        "add_to_carts": 1,
        "purchases": 1,
        "revenue": Decimal("99.80"),
        "landing_page": "/",
        "exit_page": "/checkout/done",
        "referrer": "https://www.google.com/",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "black-friday",
        "device_type": "mobile",
        "browser": "Chrome",
        "os": "Android",
        "country": "DE",
        "converted": True,
        "is_engaged": True,
        "is_bounce": False,
        "version": version,
        "updated_at": T0 + dt.timedelta(minutes=4),
    }
    row.update(overrides)
    return row
