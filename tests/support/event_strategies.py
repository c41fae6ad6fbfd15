"""Hypothesis strategies for the event contract: valid events at the contract's edges, and their wire text.

The strategies are built from the contract's published limits (lengths, bounds, the
per-type rules), never from the decoder, so a decoder that drifts from the contract is
caught. ``wire_forms`` writes one event the many ways JSON allows (key order, whitespace,
escapes, money in exponent notation or with trailing zeros), every one of which must
decode to the same event.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from pipeline.contract.event import (
    BROWSER_OS_MAX,
    DEVICE_TYPES,
    ELEMENT_ID_MAX,
    EVENT_TYPES,
    ID_MAX,
    MONEY_TEXT_MAX,
    SEARCH_QUERY_MAX,
    URL_MAX,
    UTM_MAX,
    Event,
    encode_event,
    format_timestamp,
)
from tests.support.events import make_event

UTC = dt.UTC
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
_HOST = "".join(c for c in _PRINTABLE if c not in "/?#@")


def _text(max_size: int) -> st.SearchStrategy[str]:
    """Any text but NUL (surrogates are never generated: they are not text)."""
    return st.text(
        st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1, max_size=max_size
    )


page_urls = st.builds(
    lambda scheme, host, sep, rest: f"{scheme}://{host}{sep}{rest if sep else ''}"[:URL_MAX],
    st.sampled_from(["http", "https"]),
    st.text(_HOST, min_size=1, max_size=64),
    st.sampled_from(["/", "?", "#", ""]),
    st.text(_PRINTABLE, max_size=URL_MAX),
)
referrers = st.builds(
    lambda scheme, rest: f"{scheme}://{rest}"[:URL_MAX],
    st.from_regex(r"[a-z][a-z0-9+.-]{0,10}", fullmatch=True),
    st.text(_PRINTABLE, max_size=URL_MAX),
)
cents_price = st.integers(1, 100_000_000)
cents_revenue = st.integers(0, 100_000_000_000)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@st.composite
def events(draw: st.DrawFn, now: dt.datetime) -> Event:
    """A valid event: every field drawn within the contract, times inside the decoder's window at ``now``."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    now_ms = now.replace(microsecond=now.microsecond // 1000 * 1000)
    # [now - 30 days, now + 10 minutes], the decoder's window, in whole milliseconds
    occurred = now_ms + dt.timedelta(milliseconds=draw(st.integers(-30 * 24 * 3_600_000 + 1, 10 * 60_000)))
    money = event_type in ("add_to_cart", "purchase")
    return Event(
        event_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        schema_version=1,
        event_type=event_type,  # type: ignore[arg-type]
        occurred_at=occurred,
        user_id=draw(_text(ID_MAX)),
        session_id=draw(_text(ID_MAX)),
        page_url=draw(page_urls),
        referrer=draw(st.none() | referrers),
        utm_source=draw(st.none() | _text(UTM_MAX)),
        utm_medium=draw(st.none() | _text(UTM_MAX)),
        utm_campaign=draw(st.none() | _text(UTM_MAX)),
        device_type=draw(st.sampled_from(DEVICE_TYPES)),
        browser=draw(_text(BROWSER_OS_MAX)),
        os=draw(_text(BROWSER_OS_MAX)),
        country=draw(st.from_regex(r"[A-Z]{2}", fullmatch=True)),
        element_id=draw(_text(ELEMENT_ID_MAX)) if event_type == "click" else None,
        search_query=draw(_text(SEARCH_QUERY_MAX)) if event_type == "search" else None,
        product_id=draw(_text(ID_MAX)) if money else None,
        price=_money(draw(cents_price)) if money else None,
        order_id=draw(_text(ID_MAX)) if event_type == "purchase" else None,
        revenue=_money(draw(cents_revenue)) if event_type == "purchase" else None,
    )


def _money_text(draw: st.DrawFn, value: Decimal) -> str:
    """One of the JSON numbers equal to ``value``, at most MONEY_TEXT_MAX characters."""
    cents = int(value.scaleb(2))
    forms = [
        f"{value}",
        f"{cents}e-2",
        f"{cents}E-2",
        f"{value.normalize():f}",
        f"{value}" + "0" * draw(st.integers(0, 8)),
        f"{cents * 10}e-3",
    ]
    if cents % 100 == 0:
        forms += [f"{cents // 100}", f"{cents // 100}.0", f"{Decimal(cents // 100):E}".replace("+", "")]
    if cents == 0:
        forms += ["-0", "-0.00", "0e-999", "0e-99999", "0E+99999"]
    return draw(st.sampled_from([f for f in forms if len(f) <= MONEY_TEXT_MAX]))


@st.composite
def wire_forms(draw: st.DrawFn, event: Event) -> bytes:
    """``event`` as JSON text written in one of the ways JSON allows (same keys, each once)."""
    fields: dict[str, Any] = {}
    for name in Event.__struct_fields__:
        value = getattr(event, name)
        if name == "occurred_at":
            value = format_timestamp(value)
        elif isinstance(value, Decimal):
            value = ("RAW", _money_text(draw, value))
        fields[name] = value
    order = draw(st.permutations(list(fields)))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n ", " : "), ("\t,", ":\r\n")]))
    ensure_ascii = draw(st.booleans())
    parts = []
    for name in order:
        value = fields[name]
        text = value[1] if isinstance(value, tuple) else json.dumps(value, ensure_ascii=ensure_ascii)
        key = json.dumps(name)
        if draw(st.booleans()):  # write the key's first letter as an escape
            key = '"\\u%04x' % ord(name[0]) + key[2:]
        parts.append(f"{key}{separators[1]}{text}")
    return ("{" + separators[0].join(parts) + "}").encode()


MEMBERS = [
    b'"user_id":"x"',
    b'"occurred\\u005fat":"2026-11-30T09:41:07.123456Z"',
    b'"price" : 1e1',
    b'"\\u006fs":"Android"',
    b'"os":"Android"',
    b'"revenue":null',
    b'"event_id":"0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b"',
    b'"referrer":"https://x.example/"',
    b'"country"\t:\n"FI"',
    b'"ip":"203.0.113.7"',
]
"""Whole object members, to append: most repeat a key (some escaped), one is unknown."""
TOKENS = [
    b'"',
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\u005f",
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
    b" ",
    b"\n",
    b"null",
    b"1e2",
    b"-0",
    b"0.001",
    b"1" * 40,
    b"\xff",
    b"\xc3",
    b'"price":',
    b'"user_id":"x"',
    b'"occurred_at":"2026-11-30T09:41:07.123456Z"',
    b'"occurred\\u005fat":',
]
"""Fragments that matter to a JSON decoder: quotes, escapes, structure, odd numbers, broken UTF-8."""
MONEY_TEXTS = [
    b"1e2",
    b"0.1E1",
    b"49.9" + b"0" * 1200,
    b"0e-99999",
    b"-0",
    b"1E+6",
    b"49.900",
    b"9" * 40,
    b"1e-99999",
    b"0.000000000000000000000000000000000001",
]
"""Numbers a JSON parser reads, that each sink has its own limits for."""


def base_message(now: dt.datetime) -> bytes:
    """A valid purchase (money written two ways) an hour before ``now``, with a fresh event id."""
    event = make_event(
        occurred_at=now - dt.timedelta(hours=1),
        page_url="https://shop.example.com/",
        referrer=None,
        utm_source=None,
        utm_medium=None,
        utm_campaign=None,
        product_id="p-1",
    )
    return encode_event(event)


ACTIONS = ("insert", "delete", "replace", "member", "money")


@st.composite
def corrupted(draw: st.DrawFn, now: dt.datetime, actions: tuple[str, ...] = ACTIONS, steps: int = 4) -> bytes:
    """A valid message with a few bytes inserted, deleted or replaced, a whole member appended,
    or its money rewritten (``actions``, up to ``steps`` of them)."""
    raw = bytearray(base_message(now))
    if draw(st.booleans()):
        raw = bytearray(bytes(raw).replace(b'"price":49.90', b'"price":1e1'))
    for _ in range(draw(st.integers(1, steps))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(actions))
        token = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=3))
        if action == "money":
            field = draw(st.sampled_from([b'"price":', b'"revenue":']))
            start = bytes(raw).find(field)
            if start >= 0:
                start += len(field)
                end = start
                while end < len(raw) and bytes(raw[end : end + 1]) not in (b",", b"}"):
                    end += 1
                raw[start:end] = draw(st.sampled_from(MONEY_TEXTS))
        elif action == "member":
            raw[-1:] = b"," + draw(st.sampled_from(MEMBERS)) + b"}"
        elif action == "insert":
            raw[at:at] = token
        elif action == "delete":
            del raw[at : at + len(token)]
        else:
            raw[at : at + len(token)] = token
    return bytes(raw)
