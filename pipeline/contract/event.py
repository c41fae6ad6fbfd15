"""The clickstream event contract, version 1: the one definition of an event.

Everything else derives from this module: the decoder validates against it, the
JSON Schema file is generated from it (``pipeline.contract.schema``), the generator
builds instances of it, and the sinks map its field names to columns. The field
names are fixed by the contract; changing one is a new schema version.

Why the split between the Struct and the rule constants below: msgspec enforces types,
enums, required keys, unknown keys and string lengths in C while it parses, which is
nearly free. Regular-expression constraints run through Python's ``re`` for every
value and would triple the decode cost, so the format rules (UUID, country, URL,
timestamp text) are declared here once, published in the JSON Schema through
``extra_json_schema``, and checked by hand-written equivalents in
``pipeline.events.decode``. A test holds the two to agreement.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Annotated, Final, Literal, get_args

import msgspec

SCHEMA_VERSION: Final = 1
"""The only ``schema_version`` this contract describes."""

EventType = Literal["page_view", "click", "search", "add_to_cart", "purchase"]
DeviceType = Literal["desktop", "mobile", "tablet"]

EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
DEVICE_TYPES: Final[tuple[str, ...]] = get_args(DeviceType)

# --- limits (shared by the Struct, the decoder, the schema and the sinks) -------------
ID_MAX: Final = 64
URL_MAX: Final = 2048
UTM_MAX: Final = 256
ELEMENT_ID_MAX: Final = 256
SEARCH_QUERY_MAX: Final = 512
BROWSER_OS_MAX: Final = 64

PRICE_MAX: Final = Decimal("1000000")
"""Upper bound of ``price`` (inclusive); with 2 decimals a price fits NUMERIC(9,2)."""
REVENUE_MAX: Final = Decimal("1000000000")
"""Upper bound of ``revenue`` (inclusive), so that an absurd value is rejected at the door
instead of overflowing a numeric column later; with 2 decimals it fits NUMERIC(12,2)."""
MONEY_DECIMALS: Final = 2
MONEY_TEXT_MAX: Final = 32
"""Longest JSON number text accepted for ``price`` or ``revenue``. A money value is
exactly a NUMERIC with ``MONEY_DECIMALS`` decimals, but JSON can write it in countless
ways (``100``, ``1e2``, ``100.000...0`` with thousands of zeros); each sink has its own
limit on such text, so the decoder bounds it and hands the sinks a normalised value."""

MAX_FUTURE: Final = _dt.timedelta(minutes=10)
"""How far past the decoder's ``now`` an event may claim to have happened (clock skew)."""
DEFAULT_MAX_AGE: Final = _dt.timedelta(days=30)
"""Default of how old an event may be before the decoder rejects it as absurd."""

# --- format rules, written once as ECMA-262 / Python-compatible patterns --------------
# Each pattern is anchored so it means the same under a JSON Schema validator (ECMA
# regex, ``search`` semantics) and under Python's ``re`` (where ``$`` also matches
# before a final newline: hence the length limits or the "no control character
# anywhere" look-aheads that make a trailing newline impossible).
UUID_PATTERN: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
COUNTRY_PATTERN: Final = "^[A-Z]{2}$"
TIMESTAMP_PATTERN: Final = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"
TIMESTAMP_LENGTH: Final = 24
PAGE_URL_PATTERN: Final = "^(?![\\s\\S]*[^!-~])https?://[^/?#@]+([/?#]|$)"
"""Absolute http(s) URL: printable ASCII only (a browser serialises URLs that way),
a non-empty host, and no user-info part (``user:pass@``), which would be personal data."""
REFERRER_PATTERN: Final = "^(?![\\s\\S]*[^!-~])[a-z][a-z0-9+.-]*://"
"""Any absolute URL with a scheme: referrers include app schemes like ``android-app://``."""
NO_NUL_PATTERN: Final = "^[^\\u0000]*$"
"""Free text may hold any character but NUL, which PostgreSQL text cannot store."""

# Which event types require a field to be non-null; for every other type it must be null.
TYPE_RULES: Final[dict[str, frozenset[str]]] = {
    "element_id": frozenset({"click"}),
    "search_query": frozenset({"search"}),
    "product_id": frozenset({"add_to_cart", "purchase"}),
    "price": frozenset({"add_to_cart", "purchase"}),
    "order_id": frozenset({"purchase"}),
    "revenue": frozenset({"purchase"}),
}


def _text(max_length: int, min_length: int = 1) -> msgspec.Meta:
    return msgspec.Meta(min_length=min_length, max_length=max_length, extra_json_schema={"pattern": NO_NUL_PATTERN})


EventId = Annotated[
    str,
    msgspec.Meta(
        description="Canonical lowercase UUID, unique per event (the idempotency key downstream).",
        extra_json_schema={"pattern": UUID_PATTERN, "minLength": 36, "maxLength": 36},
    ),
]
OccurredAt = Annotated[
    _dt.datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339 UTC with exactly millisecond precision and a Z suffix.",
        extra_json_schema={"pattern": TIMESTAMP_PATTERN},
    ),
]
Id = Annotated[str, _text(ID_MAX)]
PageUrl = Annotated[str, msgspec.Meta(max_length=URL_MAX, extra_json_schema={"pattern": PAGE_URL_PATTERN})]
Referrer = Annotated[str, msgspec.Meta(max_length=URL_MAX, extra_json_schema={"pattern": REFERRER_PATTERN})]
Utm = Annotated[str, _text(UTM_MAX)]
BrowserOs = Annotated[str, _text(BROWSER_OS_MAX)]
Country = Annotated[
    str,
    msgspec.Meta(
        description="ISO 3166-1 alpha-2 code, two uppercase letters.",
        extra_json_schema={"pattern": COUNTRY_PATTERN, "minLength": 2, "maxLength": 2},
    ),
]
ElementId = Annotated[str, _text(ELEMENT_ID_MAX)]
SearchQuery = Annotated[str, _text(SEARCH_QUERY_MAX)]


class Event(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One clickstream event (contract v1). Every key is required; nullable ones may be null.

    Strict on purpose: an unknown key or a missing key is an error, not a default, so a
    producer bug surfaces at the consumer's door (dead-letter topic) instead of as
    silently wrong metrics. ``price`` and ``revenue`` are ``Decimal`` so sums are exact;
    on the wire they are JSON numbers, and a decoded event carries them normalised to
    exactly ``MONEY_DECIMALS`` decimals (``1e2`` becomes ``100.00``), the value both sinks
    store. ``gc=False``: the fields are scalars only, and
    keeping millions of events out of the cyclic GC's sight makes batches cheaper.
    """

    event_id: EventId
    schema_version: Literal[1]
    event_type: EventType
    occurred_at: OccurredAt
    user_id: Id
    session_id: Id
    page_url: PageUrl
    referrer: Referrer | None
    utm_source: Utm | None
    utm_medium: Utm | None
    utm_campaign: Utm | None
    device_type: DeviceType
    browser: BrowserOs
    os: BrowserOs
    country: Country
    element_id: ElementId | None
    search_query: SearchQuery | None
    product_id: Id | None
    price: Decimal | None
    order_id: Id | None
    revenue: Decimal | None


FIELDS: Final[tuple[str, ...]] = Event.__struct_fields__
"""Field names in wire order: the order the encoder writes and the SQL columns follow."""

_OCCURRED_AT_INDEX: Final = FIELDS.index("occurred_at")


# The same fields with ``occurred_at`` as preformatted text. msgspec writes datetimes
# with microseconds (``.123000Z``); the contract wants exactly milliseconds (``.123Z``),
# so the encoder formats the timestamp itself and hands msgspec this twin. Its field
# list is copied from ``Event`` at import time, so the two cannot drift apart.
_WireEvent: Final[type[msgspec.Struct]] = msgspec.defstruct(
    "_WireEvent",
    [(name, str if name == "occurred_at" else object) for name in FIELDS],
    gc=False,
)

_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


def format_timestamp(value: _dt.datetime) -> str:
    """``2026-11-30T09:41:07.123Z`` from an aware datetime (converted to UTC, truncated to ms)."""
    if value.tzinfo is not _dt.UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        value = value.astimezone(_dt.UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond // 1000,
    )  # fmt: skip


def encode_event(event: Event) -> bytes:
    """The canonical wire bytes of an event: compact JSON, fields in contract order.

    Decimals are written as JSON numbers with their exact digits (``49.90`` stays
    ``49.90``), strings as UTF-8 (no ``\\u`` escapes except for control characters).
    """
    values = list(msgspec.structs.astuple(event))
    values[_OCCURRED_AT_INDEX] = format_timestamp(values[_OCCURRED_AT_INDEX])
    return _ENCODER.encode(_WireEvent(*values))


def event_key(event: Event) -> bytes:
    """The Kafka message key: the user id, so one user's events stay in one partition in order."""
    return event.user_id.encode()
