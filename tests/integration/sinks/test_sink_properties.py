"""The contract's promise to the sinks, tested as a property against the REAL PostgreSQL and OpenSearch.

For any batch of messages (valid events at the contract's edges in any JSON form, and
arbitrary or corrupted bytes): what the decoder accepts, both sinks accept, and store as
the same copy with the decoded values; what it refuses is dead-lettered by the consumer
(it never reaches a sink). Nothing else: no sink refusal, no event in one store only.
Example counts are bounded so the suite stays fast; the Hypothesis database keeps
failing examples for the next run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.contract.event import FIELDS, format_timestamp
from pipeline.events import Event, EventDecoder, InvalidEvent, encode_event
from pipeline.sinks.batch import Envelope
from tests.integration.sinks.conftest import Sinks
from tests.support.event_strategies import MONEY_TEXTS, base_message, corrupted, events, wire_forms
from tests.support.sink_readers import documents

NOW = dt.datetime.now(dt.UTC)
_ids = itertools.count(1)


def fresh_id() -> str:
    """A new event id per message, so examples never meet each other's events."""
    return str(uuid.UUID(int=(uuid.uuid4().int >> 64 << 64) | next(_ids)))


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["valid", "valid", "money", "corrupted", "bytes"]))
    if kind == "valid":
        event = draw(events(NOW))
        return draw(wire_forms(Event(**{**{f: getattr(event, f) for f in FIELDS}, "event_id": fresh_id()})))
    if kind == "money":  # a valid message whose price or revenue is written unusually
        return draw(corrupted(NOW, actions=("money",), steps=1))
    if kind == "corrupted":
        return draw(corrupted(NOW))
    return draw(st.binary(max_size=200))


def rows_and_documents(sinks: Sinks, ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = {str(r["event_id"]): r for r in sinks.rows("SELECT * FROM events WHERE event_id = ANY(%s::uuid[])", ids)}
    hits = documents(sinks.admin, sinks.names.events_alias, ids)
    return rows, {doc_id: hit["_source"] for doc_id, hit in hits.items()}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=st.lists(messages(), min_size=1, max_size=6))
@example(batch=[base_message(NOW).replace(b'"revenue":99.80', b'"revenue":' + text) for text in MONEY_TEXTS])
def test_what_the_decoder_accepts_both_sinks_store_alike_and_nothing_else_happens(
    sinks: Sinks, batch: list[bytes]
) -> None:
    decoder = EventDecoder()
    accepted: list[Event] = []
    for raw in batch:
        try:
            accepted.append(decoder.decode(raw, NOW))
        except InvalidEvent:
            continue  # the consumer dead-letters it with this reason; no sink sees it
    if not accepted:
        return
    envelopes = [Envelope(e, 0, i, NOW) for i, e in enumerate(accepted)]
    result = sinks.writer.store(envelopes)
    sinks.writer.index_sessions(result.sessions)
    assert result.refused == [], [(r.reason.value, r.detail) for r in result.refused]

    rows, docs = rows_and_documents(sinks, [e.event_id for e in accepted])
    assert set(rows) == set(docs) == {e.event_id for e in accepted}
    for event in accepted:
        row, doc = rows[event.event_id], docs[event.event_id]
        for field in FIELDS:
            value = getattr(event, field)
            stored = str(row[field]) if field == "event_id" else row[field]
            assert stored == value, (field, value, stored)
            if field == "occurred_at":
                assert doc[field] == format_timestamp(value)
            elif isinstance(value, Decimal):
                assert Decimal(str(doc[field])) == value
            else:
                assert doc[field] == value, (field, value, doc[field])
    assert encode_event(accepted[0])  # the stored copy is a valid event again
