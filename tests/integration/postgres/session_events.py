"""Hand-built events for the session tests, and the column selections they compare.

Expected values never come from here: they come from the one oracle,
``tests.support.truth`` (plain Python, independent of the SQL under test).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pipeline.contract.event import Event
from pipeline.sessions.columns import Part, document_columns, names
from pipeline.sinks.batch import Envelope

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
HOST = "https://shop.example.com"

METRICS = names(part=Part.METRIC)
"""The metric columns of a session row, in table order."""
DOCUMENT = tuple(c.name for c in document_columns())
"""What the sink returns for a session (the OpenSearch document): metrics and bookkeeping,
none of the table's merge-state columns."""


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


def metrics_of(row: dict[str, Any]) -> dict[str, Any]:
    """The metric columns of a ``sessions`` row: what ``tests.support.truth.expected_sessions`` computes."""
    return {k: row[k] for k in METRICS}


def document_of(row: dict[str, Any]) -> dict[str, Any]:
    """The public columns of a ``sessions`` row, as the sink returns them."""
    return {k: row[k] for k in DOCUMENT}
