"""Pure builders: envelopes and session rows in, bulk NDJSON lines out.

Nothing here talks to OpenSearch, so every rule (what an event document holds, how a
session row is converted, which index an event goes to, where a bulk request is cut)
is tested without a server, and the sink in ``index.py`` only sends bytes and reads
answers.

Why bytes built by hand with msgspec instead of dicts handed to ``opensearchpy.helpers``:
the helpers serialise with the standard ``json`` module, one action at a time, and this
is the consumer's hottest loop after decoding. msgspec writes ``Decimal`` as an exact
JSON number, and building the NDJSON this way is faster than dicts through the client's
own JSON serializer: the first line ``benchmarks/bench_opensearch_index.py`` prints
compares the two (figures in docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple

import msgspec

from pipeline.contract.event import FIELDS, format_timestamp
from pipeline.contract.names import IndexNames
from pipeline.errors import IndexingError
from pipeline.events.pages import page_path
from pipeline.sinks.batch import Envelope, SessionRow

EXTRA_EVENT_FIELDS: Final[tuple[str, ...]] = ("page_path", "ingested_at", "kafka_partition", "kafka_offset")
"""What an event document holds beyond the event's own fields, in document order."""

EVENT_DOCUMENT_FIELDS: Final[tuple[str, ...]] = FIELDS + EXTRA_EVENT_FIELDS

Kind = Literal["event", "session"]

_UTC: Final = dt.UTC
_OCCURRED_AT: Final = FIELDS.index("occurred_at")
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")

# The event document as a Struct built from the contract's field list at import time, so
# a field added to ``Event`` appears in the document (and, through the strict mapping,
# fails loudly until the template knows it). A Struct rather than a dict because it
# encodes faster (see docs/decisions.md).
_EventDocument: Final[type[msgspec.Struct]] = msgspec.defstruct(
    "_EventDocument",
    [(name, object) for name in EVENT_DOCUMENT_FIELDS],
    gc=False,
)


class BulkItem(NamedTuple):
    """One bulk action: what it is about (for error messages and retries) and its two NDJSON lines."""

    kind: Kind
    doc_id: str
    target: str
    """The index or alias the action writes to."""
    payload: bytes


def iso_millis(value: dt.datetime) -> str:
    """``2026-11-30T09:41:07.123Z``: UTC, millisecond precision, the contract's timestamp form.

    Same result as :func:`pipeline.contract.event.format_timestamp` (a unit test holds
    them equal) with a faster path for values already in UTC, which decoded events are,
    because this runs twice per event.
    """
    if value.tzinfo is _UTC:
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond // 1000,
        )
    return format_timestamp(value)


# --- events ---------------------------------------------------------------------------------


def event_values(envelope: Envelope) -> list[Any]:
    """The event document's values in :data:`EVENT_DOCUMENT_FIELDS` order."""
    event = envelope.event
    values = list(msgspec.structs.astuple(event))
    values[_OCCURRED_AT] = iso_millis(event.occurred_at)
    values.append(page_path(event.page_url))
    values.append(iso_millis(envelope.ingested_at))
    values.append(envelope.partition)
    values.append(envelope.offset)
    return values


def event_document(envelope: Envelope) -> dict[str, Any]:
    """The event document as a dict (every contract field, plus page_path, ingested_at, Kafka coordinates)."""
    return dict(zip(EVENT_DOCUMENT_FIELDS, event_values(envelope), strict=True))


def encode_event_document(envelope: Envelope) -> bytes:
    """The JSON of :func:`event_document`, without building the dict."""
    return _ENCODER.encode(_EventDocument(*event_values(envelope)))


def index_action(index: str, doc_id: str, *, version: int) -> bytes:
    """The action line of a bulk ``index`` operation with ``version_type=external``.

    OpenSearch writes the document only if ``version`` is greater than the stored one:
    re-sending the same version is a 409 that changes nothing (and costs no indexing), and
    an older write arriving late can never overwrite a newer one. Sessions carry the
    PostgreSQL row's ``version``; events the number their inserting transaction drew (see
    ``pipeline.sinks.writer``).
    """
    return _ENCODER.encode({"index": {"_index": index, "_id": doc_id, "version": version, "version_type": "external"}})


def event_item(envelope: Envelope, names: IndexNames, version: int) -> BulkItem:
    """An event's bulk action: ``_id`` = event_id, in the monthly index of its occurred_at."""
    event = envelope.event
    index = names.events_index(event.occurred_at)
    action = index_action(index, event.event_id, version=version)
    payload = b"".join((action, b"\n", encode_event_document(envelope), b"\n"))
    return BulkItem("event", event.event_id, index, payload)


# --- sessions -------------------------------------------------------------------------------


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise TypeError("timestamp without time zone (use timestamptz columns)")
    return iso_millis(value)


_PLAIN: Final = frozenset({str, int, float, bool, type(None)})
_CONVERTERS: Final[dict[type, Callable[[Any], object]]] = {
    Decimal: float,
    dt.datetime: _timestamp,
    dt.date: dt.date.isoformat,
    dt.timedelta: dt.timedelta.total_seconds,
    uuid.UUID: str,
}


def session_value(value: object) -> object:
    """A PostgreSQL value as JSON-ready data: Decimal -> float, datetime -> ISO ms string.

    float because the mapping is ``double`` (see ``mappings``); an interval becomes
    seconds; anything unexpected is refused rather than guessed at. Dispatch is on the
    exact type first (one dict lookup: a session row has ~30 columns and every batch
    rewrites thousands of rows), then on subclasses.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    convert = _CONVERTERS.get(kind)
    if convert is not None:
        return convert(value)
    if isinstance(value, (list, tuple)):
        return [session_value(v) for v in value]
    for base, convert in _CONVERTERS.items():
        if isinstance(value, base):
            return convert(value)
    if isinstance(value, (str, int, float)):  # subclasses such as an IntEnum or a str enum
        return value
    raise TypeError(f"unsupported type {kind.__name__}")


def session_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The session document: every column of the PostgreSQL row, converted by :func:`session_value`."""
    try:
        return {column: value if type(value) in _PLAIN else session_value(value) for column, value in row.items()}
    except TypeError:
        pass
    for column, value in row.items():  # the slow path, only to name the culprit
        try:
            session_value(value)
        except TypeError as exc:
            raise IndexingError(
                f"session {row.get('session_id')!r}: column {column!r} cannot be indexed: {exc}"
            ) from None
    raise AssertionError("unreachable: a conversion failed above")


def session_version(row: Mapping[str, Any]) -> int:
    """The row's ``version`` column, the external version OpenSearch compares."""
    version = row.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63:
        raise IndexingError(
            f"session {row.get('session_id')!r}: version must be an integer in [0, 2^63), got {version!r}"
        )
    return version


def session_item(row: SessionRow, names: IndexNames) -> BulkItem:
    """A session's bulk action: ``_id`` = session_id, external version = the row's version."""
    session_id = row.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise IndexingError(f"session row without a session_id cannot be indexed (version {row.get('version')!r})")
    index = names.sessions_alias
    action = index_action(index, session_id, version=session_version(row))
    payload = b"".join((action, b"\n", _ENCODER.encode(session_document(row)), b"\n"))
    return BulkItem("session", session_id, index, payload)


# --- whole batches --------------------------------------------------------------------------


def bulk_items(
    envelopes: Iterable[Envelope], sessions: Iterable[SessionRow], names: IndexNames, version: int = 1
) -> list[BulkItem]:
    """Every action of one write: events (with document ``version``) first, then sessions."""
    items = [event_item(envelope, names, version) for envelope in envelopes]
    items.extend(session_item(row, names) for row in sessions)
    return items


def chunks(items: Sequence[BulkItem], *, max_docs: int, max_bytes: int) -> Iterator[Sequence[BulkItem]]:
    """Cut ``items`` into bulk requests of at most ``max_docs`` actions and ``max_bytes`` bytes.

    Order is kept. An item larger than ``max_bytes`` on its own travels alone rather than
    being dropped (OpenSearch accepts up to 100 MiB per request; the byte limit is about
    memory and latency, not validity).
    """
    if max_docs < 1 or max_bytes < 1:
        raise ValueError("max_docs and max_bytes must be positive")
    start = 0
    size = 0
    for i, item in enumerate(items):
        length = len(item.payload)
        if i > start and (i - start >= max_docs or size + length > max_bytes):
            yield items[start:i]
            start = i
            size = 0
        size += length
    if start < len(items):
        yield items[start:]


def bulk_body(items: Iterable[BulkItem]) -> bytes:
    """The NDJSON request body: the items' lines, each already ending in a newline."""
    return b"".join(item.payload for item in items)
