"""Malformed messages: broken bytes of many kinds, each with the rejection it must earn.

Each builder gets the fault rng, a valid event and its wire bytes, and returns broken
bytes and the ``(field, reason)`` the decoder must answer with, so a test can hold the
decoder to every kind (``MALFORMED_KINDS``) without a second opinion on what is wrong.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import msgspec

from pipeline.contract.event import FIELDS, Event, format_timestamp
from pipeline.simulation.record import MALFORMED_PREFIX, SimulatedMessage, read_event

_Builder = Callable[[random.Random, Event, bytes], tuple[bytes, str | None, str]]
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


def _fields(event: Event, rng: random.Random) -> dict[str, Any]:
    """The event as an ordered dict of wire values, with a fresh event id.

    A malformed copy gets its own id so that, should a decoder bug let it through, it
    cannot overwrite the valid event it was derived from.
    """
    out: dict[str, Any] = {name: getattr(event, name) for name in FIELDS}
    out["occurred_at"] = format_timestamp(event.occurred_at)
    out["event_id"] = _uuid(rng)
    return out


def _uuid(rng: random.Random) -> str:
    h = "%032x" % ((rng.getrandbits(128) & ~((0xF << 76) | (0x3 << 62))) | (0x4 << 76) | (0x2 << 62))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _as_type(fields: dict[str, Any], event_type: str, rng: random.Random) -> dict[str, Any]:
    """Reshape the copy into a valid event of ``event_type`` (type-specific fields set)."""
    fields.update(
        event_type=event_type,
        element_id=None,
        search_query=None,
        product_id=None,
        price=None,
        order_id=None,
        revenue=None,
    )
    if event_type == "click":
        fields["element_id"] = "add-to-cart"
    elif event_type == "search":
        fields["search_query"] = "winter jacket"
    elif event_type in ("add_to_cart", "purchase"):
        fields["product_id"] = f"p-{10000 + rng.randrange(1800)}"
        fields["price"] = Decimal("49.99")
        if event_type == "purchase":
            fields["order_id"] = "o-%016x" % rng.getrandbits(64)
            fields["revenue"] = Decimal("99.98")
    return fields


def _enc(fields: dict[str, Any]) -> bytes:
    return _ENCODER.encode(fields)


def _not_json(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    samples = (
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        f"page_view {ev.user_id} {ev.page_url}".encode(),
        f"{{'event_id': '{ev.event_id}', 'event_type': '{ev.event_type}'}}".encode(),
        b"event_type=click&element_id=nav-home",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",  # a gzip header: compressed payload sent raw
    )
    return samples[rng.randrange(len(samples))], None, "not_json"


def _truncated(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    cut = rng.randrange(1, len(raw))
    # Never split a UTF-8 sequence (that is another fault) and never end on a number's
    # decimal point ("49." is an invalid number, not a truncation, to a JSON parser).
    while cut > 1 and (0x80 <= raw[cut] < 0xC0 or raw[cut - 1] == 0x2E):
        cut -= 1
    return raw[:cut], None, "truncated"


def _invalid_utf8(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    bad = (b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")[rng.randrange(6)]
    anchor = b'"user_id":"'
    i = raw.index(anchor) + len(anchor)
    return raw[:i] + bad + raw[i:], None, "invalid_utf8"


_WRONG_TYPES: Final[tuple[tuple[str, Any], ...]] = (
    ("schema_version", "1"),
    ("user_id", 12345),
    ("occurred_at", 1796032867123),
    ("device_type", True),
    ("element_id", {"id": "nav-home"}),
    ("country", ["DE"]),
    ("price", "49.99"),
    ("referrer", 0),
)


def _wrong_type(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    name, value = _WRONG_TYPES[rng.randrange(len(_WRONG_TYPES))]
    fields = _fields(ev, rng)
    if name == "price":
        _as_type(fields, "add_to_cart", rng)
    fields[name] = value
    return _enc(fields), name, "wrong_type"


def _missing_field(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    name = FIELDS[rng.randrange(len(FIELDS))]
    del fields[name]
    return _enc(fields), name, "missing_field"


def _unknown_event_type(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    fields["event_type"] = ("scroll", "checkout_started", "PAGE_VIEW", "", "page-view")[rng.randrange(5)]
    return _enc(fields), "event_type", "invalid_enum"


def _future_timestamp(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    fields["occurred_at"] = format_timestamp(ev.occurred_at + _dt.timedelta(days=rng.randrange(30, 3650)))
    return _enc(fields), "occurred_at", "in_future"


def _past_timestamp(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    fields["occurred_at"] = format_timestamp(ev.occurred_at - _dt.timedelta(days=rng.randrange(400, 20000)))
    return _enc(fields), "occurred_at", "too_old"


def _negative_price(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _as_type(_fields(ev, rng), ("add_to_cart", "purchase")[rng.randrange(2)], rng)
    fields["price"] = (Decimal("-49.99"), Decimal("-0.01"), Decimal("0"), Decimal("-1000000"))[rng.randrange(4)]
    return _enc(fields), "price", "out_of_range"


def _oversized_field(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    choice = rng.randrange(5)
    if choice == 0:
        fields["page_url"] = ev.page_url.rstrip("/") + "/" + "x" * 2100
        name = "page_url"
    elif choice == 1:
        _as_type(fields, "search", rng)
        fields["search_query"] = "shoes " * 100
        name = "search_query"
    elif choice == 2:
        fields["user_id"] = "u-" + "f" * 80
        name = "user_id"
    elif choice == 3:
        fields["utm_campaign"] = "campaign_" * 40
        name = "utm_campaign"
    else:
        _as_type(fields, "click", rng)
        fields["element_id"] = "div > " * 60
        name = "element_id"
    return _enc(fields), name, "too_long"


def _unknown_field(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    name, value = (
        ("ip_address", "203.0.113.7"),
        ("email", "someone@example.com"),
        ("user_agent", "Mozilla/5.0"),
        ("schemaVersion", 1),
    )[rng.randrange(4)]
    fields[name] = value
    return _enc(fields), name, "unknown_field"


def _bad_country(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    fields["country"] = ("Germany", "de", "D", "DEU", "12", "", "Ü1")[rng.randrange(7)]
    return _enc(fields), "country", "bad_format"


def _bad_uuid(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    u = fields["event_id"]
    fields["event_id"] = (u.upper(), u.replace("-", ""), "{" + u + "}", "not-a-uuid", u[:-1] + "g", u + "0")[
        rng.randrange(6)
    ]
    return _enc(fields), "event_id", "bad_format"


def _bad_timestamp(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    text = fields["occurred_at"]  # 2026-11-30T09:41:07.123Z
    variants = (
        text[:10] + " " + text[11:],  # space separator
        text[:19] + "Z",  # no milliseconds
        text[:23] + "456Z",  # microseconds
        text[:23] + "+00:00",  # offset instead of Z
        text[:23],  # no zone at all
        "30/11/2026 09:41:07",
    )
    fields["occurred_at"] = variants[rng.randrange(len(variants))]
    return _enc(fields), "occurred_at", "bad_format"


def _type_rule(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    choice = rng.randrange(4)
    if choice == 0:
        _as_type(fields, "click", rng)["element_id"] = None
        return _enc(fields), "element_id", "required_for_type"
    if choice == 1:
        _as_type(fields, "page_view", rng)["search_query"] = "stray query"
        return _enc(fields), "search_query", "not_allowed_for_type"
    if choice == 2:
        _as_type(fields, "purchase", rng)["order_id"] = None
        return _enc(fields), "order_id", "required_for_type"
    _as_type(fields, "add_to_cart", rng)["revenue"] = Decimal("10.00")
    return _enc(fields), "revenue", "not_allowed_for_type"


def _bad_url(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    fields["page_url"] = (
        "/p/p-10001",
        "ftp://shop.example.com/",
        "https://shop.example.com/search?q=a b",
        "javascript:alert(1)",
        "https://user:secret@shop.example.com/",
        "https://",
        "https://shop.example.com/caf\u00e9",
    )[rng.randrange(7)]
    return _enc(fields), "page_url", "bad_format"


def _nul_character(rng: random.Random, ev: Event, raw: bytes) -> tuple[bytes, str | None, str]:
    fields = _fields(ev, rng)
    name = ("user_id", "browser", "session_id")[rng.randrange(3)]
    fields[name] = fields[name][:2] + "\x00" + fields[name][2:]
    return _enc(fields), name, "bad_character"


MALFORMED_BUILDERS: Final[dict[str, _Builder]] = {
    "not_json": _not_json,
    "truncated": _truncated,
    "invalid_utf8": _invalid_utf8,
    "wrong_type": _wrong_type,
    "missing_field": _missing_field,
    "unknown_event_type": _unknown_event_type,
    "future_timestamp": _future_timestamp,
    "past_timestamp": _past_timestamp,
    "negative_price": _negative_price,
    "oversized_field": _oversized_field,
    "unknown_field": _unknown_field,
    "bad_country": _bad_country,
    "bad_uuid": _bad_uuid,
    "bad_timestamp": _bad_timestamp,
    "type_rule": _type_rule,
    "bad_url": _bad_url,
    "nul_character": _nul_character,
}
MALFORMED_KINDS: Final[tuple[str, ...]] = tuple(MALFORMED_BUILDERS)


def malformed_message(kind: str, rng: random.Random, key: bytes, value: bytes) -> SimulatedMessage:
    """A malformed message of ``kind`` derived from a valid message's key and value."""
    event = read_event(value)
    data, field, reason = MALFORMED_BUILDERS[kind](rng, event, value)
    return SimulatedMessage(key, data, MALFORMED_PREFIX + kind, (field, reason))
