"""Fixtures of the event tests: a factory of valid events (the clock and streams are one level up)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pipeline.events import Event

UTC = dt.UTC


def _make_event(**overrides: object) -> Event:
    fields: dict[str, object] = dict(
        event_id="0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b",
        schema_version=1,
        event_type="search",
        occurred_at=dt.datetime(2026, 11, 30, 9, 41, 7, 123000, tzinfo=UTC),
        user_id="u-0123456789abcdef",
        session_id="s-0123456789abcdef",
        page_url="https://shop.example.com/",
        referrer="https://www.google.com/",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="brand_search",
        device_type="mobile",
        browser="Chrome",
        os="Android",
        country="DE",
        element_id=None,
        search_query="running shoes",
        product_id=None,
        price=None,
        order_id=None,
        revenue=None,
    )
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """A factory of valid events (a search by default); keywords override fields."""
    return _make_event
