"""Property-based tests of the decoder (Hypothesis): classes of input, not examples.

* Every valid event, at the contract's edges, written in any of the ways JSON allows,
  decodes to that very event, with money normalised to two decimals.
* Any bytes whatsoever decode to an event or to an ``InvalidEvent``; nothing else escapes.
* Whenever bytes decode, an independent parser (``json`` with a duplicate-key check) reads
  the same values from them: no check of the decoder looked at another value than the one
  that is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.contract.event import format_timestamp
from pipeline.events import Event, EventDecoder, InvalidEvent, encode_event
from tests.support.event_strategies import corrupted, events, wire_forms

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=dt.UTC)
DECODER = EventDecoder()


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"decoded despite a duplicate key: {keys}"
    return dict(pairs)


def _as_the_independent_parser_reads_it(raw: bytes) -> dict[str, Any]:
    return json.loads(raw, object_pairs_hook=_pairs_without_duplicates, parse_float=Decimal, parse_int=Decimal)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_valid_event_in_every_json_form_decodes_to_itself(data: st.DataObject) -> None:
    event = data.draw(events(NOW))
    raw = data.draw(wire_forms(event))
    decoded = DECODER.decode(raw, NOW)
    assert decoded == event  # the strategy draws money with exactly two decimals: the stored form
    for value in (decoded.price, decoded.revenue):
        assert value is None or (value.as_tuple().exponent == -2 and not value.is_signed())
    assert DECODER.decode(encode_event(decoded), NOW) == decoded


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_any_bytes_decode_to_an_event_or_an_invalid_event_reading_only_stored_values(data: st.DataObject) -> None:
    raw = data.draw(st.binary(max_size=300)) if data.draw(st.booleans()) else data.draw(corrupted(NOW))
    try:
        event = DECODER.decode(raw, NOW)
    except InvalidEvent as err:
        assert err.reason.value != "invalid", err  # every failure mapped to a named reason
        return
    read = _as_the_independent_parser_reads_it(raw)
    assert set(read) == set(Event.__struct_fields__)
    for name in Event.__struct_fields__:
        value = getattr(event, name)
        if name == "occurred_at":
            assert read[name] == format_timestamp(value)
        elif isinstance(value, Decimal):
            assert read[name] == value and value.as_tuple().exponent == -2
        elif name == "schema_version":
            assert read[name] == 1
        else:
            assert read[name] == value, name
