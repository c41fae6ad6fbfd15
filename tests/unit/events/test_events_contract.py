"""The Event struct and its canonical encoding: round trips, exact decimals, odd strings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from pipeline.events import FIELDS, Event, EventDecoder, encode_event, event_key, format_timestamp
from pipeline.simulation import SimulatedMessage
from pipeline.simulation.sitemap import ODD_QUERIES

UTC = dt.UTC

ODD_STRINGS = (
    "it's",
    'say "hi"',
    "back\\slash",
    "\\u0000 as text",
    "'; DROP TABLE events; --",
    '{"json": [1, 2]}',
    "<script>alert(1)</script>",
    "emoji 👟🎁 and ZWJ 👩‍💻",
    "café naïve 東京",
    "tab\tnew\nline\rcr",
    "\u2028\u2029 separators",
    "%s %d {0} $1",
    " leading and trailing ",
)


def test_encoding_is_canonical_compact_json_in_contract_order(make_event: Callable[..., Event]) -> None:
    raw = encode_event(make_event())
    assert raw.startswith(b'{"event_id":"0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b","schema_version":1,')
    assert b'"occurred_at":"2026-11-30T09:41:07.123Z"' in raw
    keys = list(msgspec.json.decode(raw).keys())
    assert keys == list(FIELDS)
    assert b" " not in raw.replace(b"running shoes", b"")


@pytest.mark.parametrize(
    ("micro", "text"),
    [(0, "2026-11-30T09:41:07.000Z"), (5000, "2026-11-30T09:41:07.005Z"), (999999, "2026-11-30T09:41:07.999Z")],
)
def test_timestamps_have_exactly_three_fraction_digits(micro: int, text: str) -> None:
    assert format_timestamp(dt.datetime(2026, 11, 30, 9, 41, 7, micro, tzinfo=UTC)) == text


def test_timestamps_are_converted_to_utc_and_naive_ones_refused() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    assert format_timestamp(dt.datetime(2026, 11, 30, 10, 41, 7, 123000, tzinfo=cet)) == "2026-11-30T09:41:07.123Z"
    with pytest.raises(ValueError):
        format_timestamp(dt.datetime(2026, 11, 30, 9, 41, 7))


def test_money_keeps_its_exact_digits_on_the_wire_and_back(
    make_event: Callable[..., Event], end_time: dt.datetime
) -> None:
    event = make_event(
        event_type="purchase",
        search_query=None,
        product_id="p-10001",
        price=Decimal("49.90"),
        order_id="o-1",
        revenue=Decimal("1234567.10"),
    )
    raw = encode_event(event)
    assert b'"price":49.90' in raw and b'"revenue":1234567.10' in raw
    back = EventDecoder().decode(raw, end_time)
    assert back == event
    assert isinstance(back.price, Decimal) and str(back.price) == "49.90"
    assert sum([back.price] * 3, Decimal(0)) == Decimal("149.70")  # exact, unlike floats


@pytest.mark.parametrize("text", ODD_STRINGS + ODD_QUERIES)
@pytest.mark.parametrize("field", ["search_query", "user_id", "session_id", "utm_campaign", "browser", "os"])
def test_odd_strings_round_trip_exactly(
    field: str, text: str, make_event: Callable[..., Event], end_time: dt.datetime
) -> None:
    event = make_event(**{field: text})
    raw = encode_event(event)
    back = EventDecoder().decode(raw, end_time)
    assert getattr(back, field) == text
    assert back == event
    assert encode_event(back) == raw


def test_generated_messages_are_canonical(day_stream: list[SimulatedMessage], end_time: dt.datetime) -> None:
    """The generator's byte templates and encode_event are two paths to the same bytes."""
    decoder = EventDecoder()
    sample = day_stream[::97]
    assert len(sample) > 1000
    for message in sample:
        event = decoder.decode(message.value, end_time)
        assert encode_event(event) == message.value
        assert event_key(event) == message.key


def test_every_event_type_and_field_shape_occurs(day_stream: list[SimulatedMessage]) -> None:
    seen_types = set()
    odd_query_seen = False
    for message in day_stream:
        event = message.event
        assert event is not None
        seen_types.add(event.event_type)
        odd_query_seen |= event.search_query in ODD_QUERIES
    assert seen_types == {"page_view", "click", "search", "add_to_cart", "purchase"}
    assert odd_query_seen
