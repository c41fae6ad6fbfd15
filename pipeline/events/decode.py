"""Bytes in, a validated ``Event`` or a typed ``InvalidEvent`` out.

The consumer calls this on every message, so it is built for throughput: one reusable
msgspec ``Decoder`` does the structural work in C (types, enums, required and unknown
keys, string lengths) and a short run of hand-written checks covers the rest of the
contract (formats, time window, type-specific fields, money rules). Each failure is an
``InvalidEvent`` naming the field and a short reason code, so the dead-letter topic and
its dashboards can group failures without parsing prose.

Why not json.loads + jsonschema: ``benchmarks/bench_decode.py`` measures both; msgspec
is far faster (figures in docs/decisions.md) and gives ``datetime``/``Decimal`` values
directly.
"""

from __future__ import annotations

import datetime as _dt
import operator
import re
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Final

import msgspec

from pipeline.contract.event import (
    DEFAULT_MAX_AGE,
    FIELDS,
    MAX_FUTURE,
    MONEY_DECIMALS,
    MONEY_TEXT_MAX,
    PRICE_MAX,
    REVENUE_MAX,
    TIMESTAMP_PATTERN,
    TYPE_RULES,
    UUID_PATTERN,
    Event,
)


class Reason(StrEnum):
    """Machine-friendly reason codes; stable strings, safe to put in a Kafka header."""

    EMPTY = "empty"
    INVALID_UTF8 = "invalid_utf8"
    NOT_JSON = "not_json"
    TRUNCATED = "truncated"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    INVALID_ENUM = "invalid_enum"
    UNSUPPORTED_VERSION = "unsupported_version"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_FORMAT = "bad_format"
    BAD_CHARACTER = "bad_character"
    IN_FUTURE = "in_future"
    TOO_OLD = "too_old"
    OUT_OF_RANGE = "out_of_range"
    TOO_PRECISE = "too_precise"
    REQUIRED_FOR_TYPE = "required_for_type"
    NOT_ALLOWED_FOR_TYPE = "not_allowed_for_type"
    DUPLICATE_FIELD = "duplicate_field"
    """A key written twice in the object (compared after unescaping)."""
    INVALID = "invalid"
    """Fallback for a msgspec message this module does not recognise (should not happen)."""
    # Given by the consumer, not the decoder: a valid event a sink would not take.
    REFUSED_BY_POSTGRES = "refused_by_postgres"
    """PostgreSQL refused the event for good; ``dlq.detail`` carries the server's message."""
    REFUSED_BY_OPENSEARCH = "refused_by_opensearch"
    """OpenSearch refused the event document for good; ``dlq.detail`` carries its error."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """Another message with the same ``event_id`` but different content was stored first."""


class InvalidEvent(ValueError):
    """A message that breaks the contract.

    ``field`` is the offending top-level field, or None when the message as a whole is
    unusable (not JSON, not UTF-8, truncated, not an object). ``reason`` is a ``Reason``
    code; ``message`` is for humans.
    """

    def __init__(self, field: str | None, reason: Reason, message: str) -> None:
        super().__init__(field, reason, message)
        self.field = field
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.field or '<message>'}: {self.reason.value}: {self.message}"


# --- msgspec error text -> (field, reason) --------------------------------------------
_AT_FIELD = re.compile(r" - at `\$\.([A-Za-z_][A-Za-z0-9_]*)`$")
_NAMED_FIELD = re.compile(r"field `([^`]*)`")


def _from_validation_error(err: msgspec.ValidationError) -> InvalidEvent:
    text = str(err)
    m = _AT_FIELD.search(text)
    field = m.group(1) if m else None
    if text.startswith("Object missing required field"):
        named = _NAMED_FIELD.search(text)
        return InvalidEvent(named.group(1) if named else None, Reason.MISSING_FIELD, text)
    if text.startswith("Object contains unknown field"):
        named = _NAMED_FIELD.search(text)
        return InvalidEvent(named.group(1) if named else None, Reason.UNKNOWN_FIELD, text)
    if field is None:
        return InvalidEvent(None, Reason.NOT_OBJECT, text)
    if text.startswith("Invalid enum value"):
        reason = Reason.UNSUPPORTED_VERSION if field == "schema_version" else Reason.INVALID_ENUM
        return InvalidEvent(field, reason, text)
    if " of length <= " in text:
        return InvalidEvent(field, Reason.TOO_LONG, text)
    if " of length >= " in text:
        return InvalidEvent(field, Reason.TOO_SHORT, text)
    if text.startswith(("Invalid RFC3339", "Expected `datetime` with a timezone")):
        return InvalidEvent(field, Reason.BAD_FORMAT, text)
    if text.startswith("Number out of range"):
        # Only fields that are not Decimal parse a number natively: the version, or a
        # number (too large even for a float) where a string belongs.
        reason = Reason.UNSUPPORTED_VERSION if field == "schema_version" else Reason.WRONG_TYPE
        return InvalidEvent(field, reason, text)
    if text.startswith(("Expected ", "Invalid decimal string")):
        # A string where a number belongs is a type error under this contract.
        return InvalidEvent(field, Reason.WRONG_TYPE, text)
    return InvalidEvent(field, Reason.INVALID, text)


def _from_decode_error(err: msgspec.DecodeError) -> InvalidEvent:
    text = str(err)
    if text.startswith("Input data was truncated"):
        return InvalidEvent(None, Reason.TRUNCATED, text)
    if "UTF-8" in text:
        return InvalidEvent(None, Reason.INVALID_UTF8, text)
    return InvalidEvent(None, Reason.NOT_JSON, text)


# --- format checks equivalent to the patterns in pipeline/contract/event.py ----------
# UUID and timestamp use the contract's own pattern; URL and country use cheaper forms
# whose equivalence with PAGE_URL_PATTERN / REFERRER_PATTERN / COUNTRY_PATTERN is tested.
_UUID_RE: Final = re.compile(UUID_PATTERN)
_TIMESTAMP_RE: Final = re.compile(TIMESTAMP_PATTERN)
_COUNTRIES: Final = frozenset(chr(a) + chr(b) for a in range(65, 91) for b in range(65, 91))
# The page-URL prefix: scheme, then a host without user-info, ending at / ? # or the end.
_PAGE_URL_HEAD: Final = re.compile(r"https?://[^/?#@]+(?:[/?#]|\Z)")
_REFERRER_HEAD: Final = re.compile(r"[a-z][a-z0-9+.-]*://")


def _printable_ascii_no_space(text: str) -> bool:
    """Every character in ``!``..``~``: equivalent to ``(?![\\s\\S]*[^!-~])``, but O(1)+C-speed."""
    return text.isascii() and text.isprintable() and " " not in text


def is_uuid(text: str) -> bool:
    """Canonical lowercase UUID text (``UUID_PATTERN``)."""
    return len(text) == 36 and _UUID_RE.match(text) is not None


def is_page_url(text: str) -> bool:
    """Absolute http(s) URL under ``PAGE_URL_PATTERN``."""
    return _printable_ascii_no_space(text) and _PAGE_URL_HEAD.match(text) is not None


def is_referrer(text: str) -> bool:
    """Absolute URL with any scheme under ``REFERRER_PATTERN``."""
    return _printable_ascii_no_space(text) and _REFERRER_HEAD.match(text) is not None


def is_country(text: str) -> bool:
    """Two uppercase ASCII letters (``COUNTRY_PATTERN``)."""
    return text in _COUNTRIES


def is_timestamp_text(text: str) -> bool:
    """The exact text form of ``occurred_at`` (``TIMESTAMP_PATTERN``)."""
    return len(text) == 24 and _TIMESTAMP_RE.match(text) is not None


class _RawValues(msgspec.Struct):
    """The undecoded JSON of the fields whose *text* form matters, for the slow path."""

    occurred_at: msgspec.Raw = msgspec.Raw(b"null")
    price: msgspec.Raw = msgspec.Raw(b"null")
    revenue: msgspec.Raw = msgspec.Raw(b"null")


_RAW_DECODER: Final = msgspec.json.Decoder(_RawValues)
_OCCURRED_AT_KEY: Final = b'"occurred_at":"'
_CENT: Final = Decimal(1).scaleb(-MONEY_DECIMALS)
_ZERO: Final = Decimal(0)
_ZERO_CENTS: Final = _ZERO.quantize(_CENT)
_NUL_ESCAPE: Final = b"\\u0000"
_NULLABLE_RULES: Final = tuple(TYPE_RULES.items())
_PRESENCE: Final[dict[str, tuple[bool, ...]]] = {
    event_type: tuple(event_type in types for _, types in _NULLABLE_RULES)
    for event_type in ("page_view", "click", "search", "add_to_cart", "purchase")
}
_TEXT_FIELDS: Final = tuple(f for f in FIELDS if f not in {"schema_version", "occurred_at", "price", "revenue"})
_NUMBER_FIELDS: Final = frozenset({"schema_version", "price", "revenue"})
_NULLABLE_TEXT: Final = tuple(
    f
    for f in _TEXT_FIELDS
    if f
    not in {
        "event_id",
        "event_type",
        "user_id",
        "session_id",
        "page_url",
        "device_type",
        "browser",
        "os",
        "country",
    }
)
"""Text fields that may be null; every other field but the numbers is always a JSON string."""
_nullable_text_of: Final = operator.attrgetter(*_NULLABLE_TEXT)
_ALWAYS_QUOTED: Final = len(FIELDS) - len(_NUMBER_FIELDS) - len(_NULLABLE_TEXT)
_QUOTES_IF_UNIQUE: Final = tuple(2 * (len(FIELDS) + _ALWAYS_QUOTED + n) for n in range(len(_NULLABLE_TEXT) + 1))
"""Quotes in an escape-free message with unique keys, by number of null nullable text fields."""
# One JSON string token (escapes included) and, if it is a key, the colon after it.
_STRING_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"\s*(:)?')


def _duplicate_key(raw: bytes, event: Event, escaped: bool) -> str | None:
    """The first key written twice in ``raw`` (compared after unescaping), or None.

    msgspec keeps the last of two equal keys without a word, so a message could show a
    format check one value and the sinks another. This is the one place the rule
    "no key twice" is applied; every later check then reads the value that is stored.

    Fast path, one byte count: apart from escaped quotes (``\\"``, subtracted when no
    escaped backslash could make ``\\\\"`` ambiguous), the quotes count the string tokens
    exactly, two each. msgspec has proved every field present once at least; the string
    tokens are the 21 keys plus one per string value, which ``event`` tells. Equality
    means no key twice. Anything else (escaped backslashes, money sent as strings, or a
    real duplicate) takes the exact path: every string token in order, counting those
    followed by a colon.
    """
    strings = len(_NULLABLE_TEXT) - _nullable_text_of(event).count(None)
    quotes = raw.count(b'"')
    if escaped and b"\\\\" not in raw:
        quotes -= raw.count(b'\\"')  # without an escaped backslash, every \" is a quote inside a string
        escaped = False
    if not escaped and quotes == _QUOTES_IF_UNIQUE[strings]:
        return None
    keys = [m.group(0) for m in _STRING_TOKEN.finditer(raw) if m.group(1)]
    if len(keys) == len(FIELDS):
        return None
    seen: set[str] = set()
    for token in keys:
        name = msgspec.json.decode(token[: token.rindex(b'"') + 1])
        if name in seen:
            return str(name)
        seen.add(name)
    return None  # more keys than fields but none twice: msgspec refused unknown keys already


def _timestamp_text_ok(raw: bytes) -> bool:
    """Is ``occurred_at`` written exactly as ``YYYY-MM-DDTHH:MM:SS.mmmZ``?

    Fast path: in compact JSON the key is followed directly by the value, and msgspec has
    already proved the value a valid RFC 3339 datetime, so checking the separator, the
    dot, the ``Z`` and the closing quote at their fixed offsets pins the exact form
    (3 fraction digits, UTC ``Z``, upper-case ``T``). Keys are unique by now (see
    :func:`_duplicate_key`), so the one occurrence found is the value msgspec decoded.
    The needle cannot occur inside a string value, whose quotes would be escaped.
    Anything unusual (whitespace, escapes) takes the slow path, which decodes the string
    and applies the full pattern.
    """
    i = raw.find(_OCCURRED_AT_KEY)
    if i >= 0:
        j = i + len(_OCCURRED_AT_KEY)
        if raw[j + 10 : j + 11] == b"T" and raw[j + 19 : j + 20] == b"." and raw[j + 23 : j + 25] == b'Z"':
            return True
    text = msgspec.json.decode(_RAW_DECODER.decode(raw).occurred_at)
    return isinstance(text, str) and is_timestamp_text(text)


def _money(field: str, value: Decimal, raw_json: bytes, maximum: Decimal, positive: bool) -> Decimal:
    """The value as the sinks store it (exactly ``MONEY_DECIMALS`` decimals), or ``InvalidEvent``."""
    if raw_json[:1] == b'"':
        raise InvalidEvent(field, Reason.WRONG_TYPE, f"{field} must be a JSON number, not a string")
    if len(raw_json) > MONEY_TEXT_MAX:
        raise InvalidEvent(field, Reason.TOO_LONG, f"{field} is written with more than {MONEY_TEXT_MAX} characters")
    if (value <= _ZERO if positive else value < _ZERO) or value > maximum:
        bound = "> 0" if positive else ">= 0"
        raise InvalidEvent(field, Reason.OUT_OF_RANGE, f"{field} {value} not {bound} and <= {maximum}")
    exponent = value.as_tuple().exponent
    if exponent == -MONEY_DECIMALS:
        return value if value else _ZERO_CENTS  # -0.00 is 0.00
    cents = value.quantize(_CENT)
    if cents != value:
        raise InvalidEvent(field, Reason.TOO_PRECISE, f"{field} {value} has more than {MONEY_DECIMALS} decimals")
    return cents if cents else _ZERO_CENTS


class EventDecoder:
    """A reusable decoder: build one per consumer thread, call ``decode`` per message.

    ``now`` is passed per call rather than read from a clock so tests (and replays) are
    deterministic; the window bounds are recomputed only when ``now`` changes, so a batch
    decoded with one ``now`` pays for them once.
    """

    def __init__(self, *, max_age: _dt.timedelta = DEFAULT_MAX_AGE, max_future: _dt.timedelta = MAX_FUTURE) -> None:
        if max_age <= _dt.timedelta(0) or max_future < _dt.timedelta(0):
            raise ValueError("max_age must be positive and max_future non-negative")
        self._decoder = msgspec.json.Decoder(Event)
        self.max_age = max_age
        self.max_future = max_future
        self._now: _dt.datetime | None = None
        self._oldest = self._newest = _dt.datetime.min.replace(tzinfo=_dt.UTC)

    def _window(self, now: _dt.datetime) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        self._now = now
        self._oldest = now - self.max_age
        self._newest = now + self.max_future

    def decode(self, raw: bytes, now: _dt.datetime) -> Event:
        """Decode and validate one message, or raise ``InvalidEvent``."""
        if now is not self._now:
            self._window(now)
        if not raw:
            raise InvalidEvent(None, Reason.EMPTY, "empty message")
        try:
            ev: Event = self._decoder.decode(raw)
        except msgspec.ValidationError as err:
            raise _from_validation_error(err) from None
        except msgspec.DecodeError as err:
            raise _from_decode_error(err) from None

        escaped = b"\\" in raw
        duplicate = _duplicate_key(raw, ev, escaped)
        if duplicate is not None:
            raise InvalidEvent(duplicate, Reason.DUPLICATE_FIELD, f"key {duplicate!r} appears more than once")
        if not is_uuid(ev.event_id):
            raise InvalidEvent("event_id", Reason.BAD_FORMAT, "event_id is not a canonical lowercase UUID")
        if not _timestamp_text_ok(raw):
            raise InvalidEvent("occurred_at", Reason.BAD_FORMAT, "occurred_at must look like 2026-11-30T09:41:07.123Z")
        ts = ev.occurred_at
        if ts > self._newest:
            raise InvalidEvent("occurred_at", Reason.IN_FUTURE, f"occurred_at {ts} is after {self._newest}")
        if ts < self._oldest:
            raise InvalidEvent("occurred_at", Reason.TOO_OLD, f"occurred_at {ts} is before {self._oldest}")
        if not is_page_url(ev.page_url):
            raise InvalidEvent("page_url", Reason.BAD_FORMAT, "page_url is not an absolute http(s) URL")
        if ev.referrer is not None and not is_referrer(ev.referrer):
            raise InvalidEvent("referrer", Reason.BAD_FORMAT, "referrer is not an absolute URL")
        if ev.country not in _COUNTRIES:
            raise InvalidEvent("country", Reason.BAD_FORMAT, "country is not two uppercase letters")

        present = (
            ev.element_id is not None,
            ev.search_query is not None,
            ev.product_id is not None,
            ev.price is not None,
            ev.order_id is not None,
            ev.revenue is not None,
        )
        expected = _PRESENCE[ev.event_type]
        if present != expected:
            for (field, _), is_set, must_be_set in zip(_NULLABLE_RULES, present, expected, strict=True):
                if is_set != must_be_set:
                    if must_be_set:
                        raise InvalidEvent(field, Reason.REQUIRED_FOR_TYPE, f"{ev.event_type} needs {field}")
                    raise InvalidEvent(field, Reason.NOT_ALLOWED_FOR_TYPE, f"{field} must be null for {ev.event_type}")

        if ev.price is not None:
            raws = _RAW_DECODER.decode(raw)
            price = _money("price", ev.price, bytes(raws.price), PRICE_MAX, positive=True)
            revenue = ev.revenue
            if revenue is not None:
                revenue = _money("revenue", revenue, bytes(raws.revenue), REVENUE_MAX, positive=False)
            if price is not ev.price or revenue is not ev.revenue:
                ev = msgspec.structs.replace(ev, price=price, revenue=revenue)

        # JSON can only carry NUL as the escape \u0000, and any escape needs a backslash:
        # one memchr settles nearly every message.
        if escaped and _NUL_ESCAPE in raw:
            for field in _TEXT_FIELDS:
                value = getattr(ev, field)
                if value is not None and "\x00" in value:
                    raise InvalidEvent(field, Reason.BAD_CHARACTER, f"{field} contains a NUL character")
        return ev

    def decode_batch(self, raws: Iterable[bytes], now: _dt.datetime) -> list[Event | InvalidEvent]:
        """Decode many messages with one ``now``; errors are returned in place, not raised."""
        out: list[Event | InvalidEvent] = []
        append = out.append
        decode = self.decode
        for raw in raws:
            try:
                append(decode(raw, now))
            except InvalidEvent as err:
                append(err)
        return out


_DEFAULT: Final = EventDecoder()


def decode(raw: bytes, now: _dt.datetime, *, max_age: _dt.timedelta = DEFAULT_MAX_AGE) -> Event:
    """One-shot convenience over a shared ``EventDecoder``; raises ``InvalidEvent``."""
    if max_age == DEFAULT_MAX_AGE:
        return _DEFAULT.decode(raw, now)
    return EventDecoder(max_age=max_age).decode(raw, now)
