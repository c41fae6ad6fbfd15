"""Fixtures of the event tests: a factory of valid events (the clock and streams are one level up)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pipeline.events import Event
from tests.support.events import event_of_type

UTC = dt.UTC


SEARCH: dict[str, object] = {
    "event_id": "0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b",
    "user_id": "u-0123456789abcdef",
    "session_id": "s-0123456789abcdef",
    "page_url": "https://shop.example.com/",
    "utm_campaign": "brand_search",
    "search_query": "running shoes",
}
"""Where the event tests' default search differs from the kit's event: fixed ids, so encodings compare."""


def _make_event(**overrides: object) -> Event:
    return event_of_type("search", **{**SEARCH, **overrides})


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """A factory of valid events (a search by default); keywords override fields."""
    return _make_event
