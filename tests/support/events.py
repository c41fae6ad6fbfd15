"""Small, valid events, envelopes and session rows, built by hand for tests of any layer.

One builder: :func:`make_event` is a valid purchase, and keywords replace fields (the
caller keeps the contract's rules, or breaks them on purpose). :func:`event_of_type`
fills the fields the contract ties to an event type (``TYPE_RULES``: non-null for the
types that need them, null for the others), so a page view or a click is one call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pipeline.contract.event import TYPE_RULES, Event
from pipeline.sinks.batch import Envelope, SessionRow

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 9, 41, 7, 123000, tzinfo=UTC)
"""When the default event happened: a fixed time, so tests never read the clock."""
HOST = "https://shop.example.com"

ORIGIN: dict[str, Any] = {
    "referrer": "https://www.google.com/",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "black-friday",
    "device_type": "mobile",
    "browser": "Chrome",
    "os": "Android",
    "country": "DE",
}
"""Where the default visitor comes from and on what: the event's fields, and its session row's (a session
takes them from its first event)."""

TYPE_FIELD_DEFAULTS: dict[str, Any] = {
    "element_id": "add-to-cart-button",
    "search_query": "red shoes",
    "product_id": "p-42",
    "price": Decimal("49.90"),
    "order_id": "o-1",
    "revenue": Decimal("99.80"),
}
"""The value of each type-bound field where the event's type requires one."""


def make_event(**overrides: Any) -> Event:
    """A valid purchase with a fresh event id; ``overrides`` replace fields as given."""
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "purchase",
        "occurred_at": T0,
        "user_id": "u-1",
        "session_id": "s-1",
        "page_url": f"{HOST}/checkout/done?order=o-1#thanks",
        **ORIGIN,
        **{field: TYPE_FIELD_DEFAULTS[field] if "purchase" in types else None for field, types in TYPE_RULES.items()},
    }
    fields.update(overrides)
    return Event(**fields)


def event_of_type(event_type: str, /, **overrides: Any) -> Event:
    """A valid event of ``event_type``: the type-bound fields filled or nulled as the contract says
    (``overrides`` win, ``event_type`` among them: an event that breaks the rules on purpose)."""
    bound = {field: TYPE_FIELD_DEFAULTS[field] if event_type in types else None for field, types in TYPE_RULES.items()}
    return make_event(**{"event_type": event_type, **bound, **overrides})


def make_page_view(**overrides: Any) -> Event:
    return event_of_type("page_view", **{"page_url": f"{HOST}/product/42", **overrides})


def make_search(query: str = "red shoes", **overrides: Any) -> Event:
    return event_of_type("search", **{"page_url": f"{HOST}/search?q=red+shoes", "search_query": query, **overrides})


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
        **ORIGIN,
        "converted": True,
        "is_engaged": True,
        "is_bounce": False,
        "version": version,
        "updated_at": T0 + dt.timedelta(minutes=4),
    }
    row.update(overrides)
    return row
