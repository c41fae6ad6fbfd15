"""The decoder: every way a message can break the contract gives the right field and reason."""

from __future__ import annotations

import collections
import datetime as dt
import random
import re
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from pipeline.contract.event import (
    COUNTRY_PATTERN,
    PAGE_URL_PATTERN,
    REFERRER_PATTERN,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
)
from pipeline.events import (
    Event,
    EventDecoder,
    InvalidEvent,
    Reason,
    decode,
    encode_event,
)
from pipeline.events.decode import is_country, is_page_url, is_referrer, is_timestamp_text, is_uuid
from pipeline.simulation.malformed import MALFORMED_BUILDERS, MALFORMED_KINDS, malformed_message

MakeEvent = Callable[..., Event]


def rejection(raw: bytes, now: dt.datetime, **kwargs: object) -> tuple[str | None, str]:
    with pytest.raises(InvalidEvent) as info:
        EventDecoder(**kwargs).decode(raw, now)  # type: ignore[arg-type]
    return info.value.field, info.value.reason.value


def with_field(raw: bytes, name: str, json_value: bytes) -> bytes:
    """Replace one top-level value in compact canonical JSON (test helper, not a JSON editor)."""
    replacement = b'"%s":%s' % (name.encode(), json_value)
    return re.sub(rb'"%s":(null|"[^"]*"|[^,}]*)' % name.encode(), lambda _: replacement, raw, count=1)


# --- the malformed kinds the fault injector produces ------------------------------------
@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_and_variant_is_rejected_as_expected(
    kind: str, make_event: MakeEvent, end_time: dt.datetime
) -> None:
    """Many draws per kind, so every variant of every builder is exercised."""
    templates = [
        make_event(),
        make_event(event_type="page_view", search_query=None),
        make_event(
            event_type="purchase",
            search_query=None,
            product_id="p-10001",
            price=Decimal("49.99"),
            order_id="o-1",
            revenue=Decimal("99.98"),
        ),  # fmt: skip
    ]
    rng = random.Random(kind)
    reasons = set()
    for i in range(120):
        template = templates[i % len(templates)]
        message = malformed_message(kind, rng, template.user_id.encode(), encode_event(template))
        assert message.kind == f"malformed:{kind}"
        assert message.expected is not None
        assert message.event is None
        got = rejection(message.value, end_time)
        assert got == message.expected, message.value[:200]
        reasons.add(got)
    assert reasons


def test_malformed_kinds_cover_the_issue_list() -> None:
    required = {
        "not_json", "truncated", "invalid_utf8", "wrong_type", "missing_field", "unknown_event_type",
        "future_timestamp", "past_timestamp", "negative_price", "oversized_field", "unknown_field",
        "bad_country", "bad_uuid",
    }  # fmt: skip
    assert required <= set(MALFORMED_KINDS) == set(MALFORMED_BUILDERS)


# --- structural errors -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", (None, "empty")),
        (b"not json", (None, "not_json")),
        (b"{'single': 'quotes'}", (None, "not_json")),
        (b"[1, 2]", (None, "not_object")),
        (b"null", (None, "not_object")),
        (b'"a string"', (None, "not_object")),
        (b"{", (None, "truncated")),
        (b'{"event_id":"\xff"}', (None, "invalid_utf8")),
        (b"{}", ("event_id", "missing_field")),
    ],
)
def test_message_level_errors(raw: bytes, expected: tuple[str | None, str], end_time: dt.datetime) -> None:
    assert rejection(raw, end_time) == expected


@pytest.mark.parametrize(
    ("field", "json_value", "reason"),
    [
        ("schema_version", b"2", "unsupported_version"),
        ("schema_version", b'"1"', "wrong_type"),
        ("schema_version", b"true", "wrong_type"),
        ("event_type", b'"scroll"', "invalid_enum"),
        ("event_type", b"null", "wrong_type"),
        ("device_type", b'"watch"', "invalid_enum"),
        ("user_id", b'""', "too_short"),
        ("user_id", b'"' + b"u" * 65 + b'"', "too_long"),
        ("user_id", b"null", "wrong_type"),
        ("session_id", b"42", "wrong_type"),
        ("event_id", b"1e400", "wrong_type"),
        ("schema_version", b"1e400", "unsupported_version"),
        ("browser", b'"' + b"B" * 65 + b'"', "too_long"),
        ("page_url", b'"https://shop.example.com/' + b"x" * 2030 + b'"', "too_long"),
        ("referrer", b'"https://a.example/' + b"x" * 2040 + b'"', "too_long"),
        ("utm_source", b'"' + b"s" * 257 + b'"', "too_long"),
        ("utm_medium", b'""', "too_short"),
        ("search_query", b'"' + b"q" * 513 + b'"', "too_long"),
        ("occurred_at", b'"yesterday"', "bad_format"),
        ("occurred_at", b'"2026-11-30T09:41:07.123"', "bad_format"),
        ("occurred_at", b'"2026-11-30T09:41:07.123+00:00"', "bad_format"),
        ("occurred_at", b'"2026-11-30T10:41:07.123+01:00"', "bad_format"),
        ("occurred_at", b'"2026-11-30 09:41:07.123Z"', "bad_format"),
        ("occurred_at", b'"2026-11-30t09:41:07.123z"', "bad_format"),
        ("occurred_at", b'"2026-11-30T09:41:07Z"', "bad_format"),
        ("occurred_at", b'"2026-11-30T09:41:07.12Z"', "bad_format"),
        ("occurred_at", b'"2026-11-30T09:41:07.1234Z"', "bad_format"),
        ("occurred_at", b"1796032867123", "wrong_type"),
        ("event_id", b'"0F8E3C1A-5B7D-4E2F-9A6B-1C2D3E4F5A6B"', "bad_format"),
        ("event_id", b'"0f8e3c1a5b7d4e2f9a6b1c2d3e4f5a6b"', "bad_format"),
        ("event_id", b'"0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6"', "bad_format"),
        ("country", b'"de"', "bad_format"),
        ("country", b'"DEU"', "bad_format"),
        ("country", b'""', "bad_format"),
        ("page_url", b'"/relative"', "bad_format"),
        ("page_url", b'"ftp://shop.example.com/"', "bad_format"),
        ("page_url", b'"https://shop.example.com/a b"', "bad_format"),
        ("page_url", b'"https://me:pw@shop.example.com/"', "bad_format"),
        ("page_url", b'"https://shop.example.com/\\n"', "bad_format"),
        ("referrer", b'"www.google.com"', "bad_format"),
        ("user_id", b'"u-\\u0000"', "bad_character"),
        ("search_query", b'"a\\u0000b"', "bad_character"),
    ],
)
def test_field_errors(field: str, json_value: bytes, reason: str, make_event: MakeEvent, end_time: dt.datetime) -> None:
    raw = with_field(encode_event(make_event()), field, json_value)
    assert raw != encode_event(make_event())
    assert rejection(raw, end_time) == (field, reason)


def test_unknown_and_missing_fields_are_named(make_event: MakeEvent, end_time: dt.datetime) -> None:
    raw = encode_event(make_event())
    assert rejection(raw[:-1] + b',"ip_address":"203.0.113.7"}', end_time) == ("ip_address", "unknown_field")
    assert rejection(raw.replace(b'"referrer":"https://www.google.com/",', b""), end_time) == (
        "referrer",
        "missing_field",
    )


# --- event-type rules -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (dict(event_type="click", search_query=None), ("element_id", "required_for_type")),
        (dict(event_type="search", search_query=None), ("search_query", "required_for_type")),
        (dict(event_type="page_view"), ("search_query", "not_allowed_for_type")),
        (dict(element_id="nav-home"), ("element_id", "not_allowed_for_type")),
        (dict(event_type="add_to_cart", search_query=None, product_id="p-1"), ("price", "required_for_type")),
        (dict(event_type="add_to_cart", search_query=None, price=Decimal(1)), ("product_id", "required_for_type")),
        (
            dict(event_type="purchase", search_query=None, product_id="p-1", price=Decimal(1), order_id="o-1"),
            ("revenue", "required_for_type"),
        ),
        (
            dict(event_type="add_to_cart", search_query=None, product_id="p-1", price=Decimal(1), order_id="o-1"),
            ("order_id", "not_allowed_for_type"),
        ),
    ],
)
def test_type_specific_fields(
    overrides: dict[str, object], expected: tuple[str, str], make_event: MakeEvent, end_time: dt.datetime
) -> None:
    assert rejection(encode_event(make_event(**overrides)), end_time) == expected


# --- money ------------------------------------------------------------------------------
def priced(make_event: MakeEvent, price: str, revenue: str = "10.00") -> bytes:
    raw = encode_event(
        make_event(
            event_type="purchase",
            search_query=None,
            product_id="p-1",
            price=Decimal("1"),
            order_id="o-1",
            revenue=Decimal("1"),
        )  # fmt: skip
    )
    return with_field(with_field(raw, "price", price.encode()), "revenue", revenue.encode())


@pytest.mark.parametrize("price", ["0.01", "1", "49.9", "49.90", "49.900", "1000000", "1000000.00", "1e2", "12.5E1"])
def test_valid_prices(price: str, make_event: MakeEvent, end_time: dt.datetime) -> None:
    event = EventDecoder().decode(priced(make_event, price), end_time)
    assert event.price == Decimal(price)


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        ("0", "out_of_range"),
        ("-0.01", "out_of_range"),
        ("-49.99", "out_of_range"),
        ("1000000.01", "out_of_range"),
        ("1e400", "out_of_range"),
        ("0.001", "too_precise"),
        ("49.999", "too_precise"),
        ('"49.99"', "wrong_type"),
        ('"NaN"', "wrong_type"),
        ('"Infinity"', "wrong_type"),
        ("true", "wrong_type"),
        ("[1]", "wrong_type"),
    ],
)
def test_invalid_prices(price: str, reason: str, make_event: MakeEvent, end_time: dt.datetime) -> None:
    assert rejection(priced(make_event, price), end_time) == ("price", reason)


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        ("0", None),
        ("999999999.99", None),
        ("-0.01", ("revenue", "out_of_range")),
        ("1000000000.01", ("revenue", "out_of_range")),
        ("10.005", ("revenue", "too_precise")),
        ('"10.00"', ("revenue", "wrong_type")),
    ],
)
def test_revenue_rules(
    revenue: str, expected: tuple[str, str] | None, make_event: MakeEvent, end_time: dt.datetime
) -> None:
    raw = priced(make_event, "5.00", revenue)
    if expected is None:
        assert EventDecoder().decode(raw, end_time).revenue == Decimal(revenue)
    else:
        assert rejection(raw, end_time) == expected


# --- the time window --------------------------------------------------------------------
def at(make_event: MakeEvent, when: dt.datetime) -> bytes:
    return encode_event(make_event(occurred_at=when))


def test_time_window_bounds_are_inclusive(make_event: MakeEvent, end_time: dt.datetime) -> None:
    decoder = EventDecoder(max_age=dt.timedelta(days=30))
    ms = dt.timedelta(milliseconds=1)
    decoder.decode(at(make_event, end_time + dt.timedelta(minutes=10)), end_time)
    decoder.decode(at(make_event, end_time - dt.timedelta(days=30)), end_time)
    assert rejection(at(make_event, end_time + dt.timedelta(minutes=10) + ms), end_time) == (
        "occurred_at",
        "in_future",
    )
    assert rejection(at(make_event, end_time - dt.timedelta(days=30) - ms), end_time) == ("occurred_at", "too_old")


def test_max_age_is_configurable(make_event: MakeEvent, end_time: dt.datetime) -> None:
    old = at(make_event, end_time - dt.timedelta(days=40))
    assert EventDecoder(max_age=dt.timedelta(days=60)).decode(old, end_time).occurred_at < end_time
    assert decode(old, end_time, max_age=dt.timedelta(days=60)).occurred_at < end_time
    assert rejection(old, end_time) == ("occurred_at", "too_old")
    assert rejection(old, end_time, max_age=dt.timedelta(days=1)) == ("occurred_at", "too_old")


def test_now_must_be_aware(make_event: MakeEvent) -> None:
    with pytest.raises(ValueError):
        EventDecoder().decode(encode_event(make_event()), dt.datetime(2026, 11, 30, 12, 0))


def test_decoded_timestamp_is_aware_utc_with_milliseconds(make_event: MakeEvent, end_time: dt.datetime) -> None:
    event = EventDecoder().decode(encode_event(make_event()), end_time)
    assert event.occurred_at.utcoffset() == dt.timedelta(0)
    assert event.occurred_at == dt.datetime(2026, 11, 30, 9, 41, 7, 123000, tzinfo=dt.UTC)


# --- leniency where JSON allows it ----------------------------------------------------------
def test_whitespace_and_key_order_do_not_matter(make_event: MakeEvent, end_time: dt.datetime) -> None:
    event = make_event(
        event_type="purchase", search_query=None, product_id="p-1", price=Decimal("9.99"), order_id="o-1",
        revenue=Decimal("19.98"),
    )  # fmt: skip
    as_dict = msgspec.json.Decoder(float_hook=Decimal).decode(encode_event(event))
    shuffled = dict(reversed(list(as_dict.items())))
    pretty = msgspec.json.format(msgspec.json.Encoder(decimal_format="number").encode(shuffled), indent=4)
    assert b'\n    "occurred_at": "2026-11-30T09:41:07.123Z"' in pretty
    assert EventDecoder().decode(pretty, end_time) == event


def test_escaped_text_counts_as_its_characters(make_event: MakeEvent, end_time: dt.datetime) -> None:
    raw = encode_event(make_event(search_query="a\\u0000b"))  # backslash-u text, not a NUL
    assert b"\\\\u0000" in raw
    assert EventDecoder().decode(raw, end_time).search_query == "a\\u0000b"
    escaped_z = raw.replace(b'.123Z"', b'.123\\u005a"'.replace(b"005a", b"005A"))
    assert EventDecoder().decode(escaped_z, end_time).occurred_at.microsecond == 123000


def test_trailing_bytes_after_the_object_are_not_json(make_event: MakeEvent, end_time: dt.datetime) -> None:
    assert rejection(encode_event(make_event()) + b" x", end_time) == (None, "not_json")


def test_decode_batch_returns_errors_in_place(make_event: MakeEvent, end_time: dt.datetime) -> None:
    good = encode_event(make_event())
    out = EventDecoder().decode_batch([good, b"nope", good], end_time)
    assert isinstance(out[0], Event) and isinstance(out[2], Event)
    assert isinstance(out[1], InvalidEvent) and out[1].reason is Reason.NOT_JSON
    assert "not_json" in str(out[1])


# --- the fast format checks equal the published patterns ------------------------------------
_ALPHABET = "aAzZ09-_.:/?#@ %\t\n\x00\x7f~!éü東👟fF8g{}[]\"'\\"


def _fuzz(rng: random.Random, seeds: list[str], n: int) -> list[str]:
    out = list(seeds)
    for _ in range(n):
        base = list(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            i = rng.randrange(len(base) + 1)
            if op == 0:
                base.insert(i, rng.choice(_ALPHABET))
            elif op == 1 and base:
                del base[min(i, len(base) - 1)]
            elif base:
                base[min(i, len(base) - 1)] = rng.choice(_ALPHABET)
        out.append("".join(base))
    return out


@pytest.mark.parametrize(
    ("check", "pattern", "seeds"),
    [
        (is_uuid, UUID_PATTERN, ["0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b", "00000000-0000-0000-0000-000000000000"]),
        (is_country, COUNTRY_PATTERN, ["DE", "US", "ZZ"]),
        (is_timestamp_text, TIMESTAMP_PATTERN, ["2026-11-30T09:41:07.123Z"]),
        (
            is_page_url,
            PAGE_URL_PATTERN,
            ["https://shop.example.com/", "http://a.b", "https://shop.example.com/search?q=a+b#x", "https://h?x"],
        ),
        (is_referrer, REFERRER_PATTERN, ["https://www.google.com/", "android-app://com.google.android.gm/"]),
    ],
)
def test_fast_checks_agree_with_published_patterns(
    check: Callable[[str], bool], pattern: str, seeds: list[str]
) -> None:
    """The decoder's hand-written checks accept exactly what the schema's patterns accept.

    Python's ``re.search`` stands in for an ECMA-262 engine: the patterns avoid the
    constructs where the two differ (see pipeline/contract/event.py).
    """
    compiled = re.compile(pattern)
    rng = random.Random(pattern)
    samples = _fuzz(rng, seeds, 4000)
    accepted = 0
    for text in samples:
        # Lengths are enforced by msgspec before these checks, so apply the schema's too.
        expected = compiled.search(text) is not None
        if pattern in (UUID_PATTERN, COUNTRY_PATTERN) or pattern == TIMESTAMP_PATTERN:
            expected = expected and len(text) == {UUID_PATTERN: 36, COUNTRY_PATTERN: 2}.get(pattern, 24)
        assert check(text) == expected, repr(text)
        accepted += expected
    assert 0 < accepted < len(samples)


def test_random_corruption_only_ever_raises_invalid_event(end_time: dt.datetime) -> None:
    """Byte-level fuzzing of real messages: every outcome is an Event or an InvalidEvent."""
    from itertools import islice

    from pipeline.simulation import SimulationConfig, backfill

    messages = [m.value for m in islice(backfill(SimulationConfig(seed=5, rate=20), end_time), 3000)]
    priced = [v for v in messages if b'"price":null' not in v]
    assert priced
    rng = random.Random(0)
    decoder = EventDecoder()
    alphabet = b'0123456789.eE+-"\\{}[],:nulltrue \x00\xff\xc3'
    outcomes: collections.Counter[str] = collections.Counter()
    for i in range(20_000):
        raw = bytearray(rng.choice(priced if i % 2 else messages))
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(raw))
            op = rng.randrange(3)
            if op == 0:
                del raw[pos]
            elif op == 1:
                raw.insert(pos, rng.choice(alphabet))
            else:
                raw[pos] = rng.choice(alphabet)
        try:
            decoder.decode(bytes(raw), end_time)
            outcomes["ok"] += 1
        except InvalidEvent as err:
            outcomes[err.reason.value] += 1
    assert "invalid" not in outcomes  # every msgspec message was mapped to a reason code
    assert outcomes["ok"] > 0 and len(outcomes) > 8


# --- one value per key, and money as the sinks store it ---------------------------------------
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (b',"user_id":"u-other"', "user_id"),  # plain repeat, last would win in msgspec
        (b',"occurred\\u005fat":"2026-11-30T09:41:07.123456+00:00"', "occurred_at"),  # escaped key
        (b',"os" :"Linux"', "os"),  # whitespace before the colon
        (b',"price":null', "price"),  # a repeat with a null value adds no string value
        (b',\n  "country"\t:\t"FR"', "country"),
        (b',"\\u0065vent_id":"0f8e3c1a-5b7d-4e2f-9a6b-1c2d3e4f5a6b"', "event_id"),  # even with the same value
    ],
)
def test_a_key_written_twice_is_rejected_after_unescaping(
    extra: bytes, field: str, make_event: MakeEvent, end_time: dt.datetime
) -> None:
    raw = encode_event(make_event())
    assert rejection(raw[:-1] + extra + b"}", end_time) == (field, "duplicate_field")


def test_escaped_keys_without_a_repeat_are_accepted(make_event: MakeEvent, end_time: dt.datetime) -> None:
    raw = encode_event(make_event())
    escaped = raw.replace(b'"occurred_at"', b'"occurred\\u005fat"').replace(b'"os"', b'"\\u006fs"')
    assert EventDecoder().decode(escaped, end_time) == make_event()


def test_duplicate_keys_cannot_smuggle_a_timestamp_past_the_text_check(
    make_event: MakeEvent, end_time: dt.datetime
) -> None:
    """The fast check reads the first (good) text; a parser keeping the last would store microseconds."""
    raw = encode_event(make_event())
    smuggled = raw[:-1] + b',"occurred\\u005fat":"2026-11-30T09:41:07.123999Z"}'
    assert rejection(smuggled, end_time)[1] == "duplicate_field"


def test_strings_that_look_like_keys_are_not_counted(make_event: MakeEvent, end_time: dt.datetime) -> None:
    query = 'a "b": c \\" "user_id": d'
    event = make_event(search_query=query)
    assert EventDecoder().decode(encode_event(event), end_time).search_query == query


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("49.9", "49.90"),
        ("1e2", "100.00"),
        ("12.5E1", "125.00"),
        ("1E+6", "1000000.00"),
        ("0.010", "0.01"),
        ("49.900000", "49.90"),
        ("1000000.00", "1000000.00"),
    ],
)
def test_money_is_normalised_to_exactly_two_decimals(
    written: str, stored: str, make_event: MakeEvent, end_time: dt.datetime
) -> None:
    event = EventDecoder().decode(priced(make_event, written, revenue=written), end_time)
    for value in (event.price, event.revenue):
        assert value is not None and str(value) == stored and value.as_tuple().exponent == -2


@pytest.mark.parametrize("revenue", ["-0", "-0.00", "0e-99999", "0E+99", "0.000"])
def test_every_zero_revenue_is_stored_as_zero(revenue: str, make_event: MakeEvent, end_time: dt.datetime) -> None:
    event = EventDecoder().decode(priced(make_event, "1.00", revenue), end_time)
    assert str(event.revenue) == "0.00" and not event.revenue.is_signed()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        ("1." + "0" * 40, "too_long"),  # exact, but its text is unbounded
        ("0.0000000000000000000000000000001", "too_long"),
        ("1e-999999999", "too_precise"),
        ("1E+999999999", "out_of_range"),
    ],
)
def test_money_text_is_bounded(price: str, reason: str, make_event: MakeEvent, end_time: dt.datetime) -> None:
    assert rejection(priced(make_event, price), end_time) == ("price", reason)


def test_the_money_text_bound_is_the_contract_constant(make_event: MakeEvent, end_time: dt.datetime) -> None:
    from pipeline.contract.event import MONEY_TEXT_MAX

    longest = "1." + "0" * (MONEY_TEXT_MAX - 2)
    assert EventDecoder().decode(priced(make_event, longest), end_time).price == Decimal(1)
    assert rejection(priced(make_event, longest + "0"), end_time) == ("price", "too_long")


@pytest.mark.parametrize("text", [b'"\\ud800"', b'"\\udc00x"', b'"x\\ud83d"', b'"\\ud800\\u0041"'])
def test_lone_surrogates_are_refused(text: bytes, make_event: MakeEvent, end_time: dt.datetime) -> None:
    raw = with_field(encode_event(make_event()), "search_query", text)
    field, reason = rejection(raw, end_time)
    assert reason in ("not_json", "truncated", "invalid_utf8")


@pytest.mark.parametrize("query", ['say "hi"', 'a \\ b "c"', '"', 'x": "y'])
def test_escaped_quotes_in_values_neither_hide_nor_fake_a_repeated_key(
    query: str, make_event: MakeEvent, end_time: dt.datetime
) -> None:
    raw = encode_event(make_event(search_query=query))
    assert EventDecoder().decode(raw, end_time).search_query == query
    assert rejection(raw[:-1] + b',"browser":"Safari"}', end_time) == ("browser", "duplicate_field")
