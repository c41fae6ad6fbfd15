"""The shipped JSON Schema is the Struct's: derived from it, and agreeing with the decoder."""

from __future__ import annotations

import datetime as dt
import json
import random
import typing
from decimal import Decimal
from typing import Any

import jsonschema
import msgspec
import pytest

from pipeline.contract.event import DEVICE_TYPES, EVENT_TYPES, TYPE_RULES
from pipeline.contract.schema import SCHEMA_PATH, main, render_schema
from pipeline.events import FIELDS, Event, EventDecoder, InvalidEvent, encode_event
from pipeline.simulation import SimulatedMessage
from pipeline.simulation.malformed import MALFORMED_KINDS, malformed_message


def shipped() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def test_shipped_file_is_a_fresh_derivation() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), "run: python -m pipeline.contract.schema --write"
    assert main(["--check"]) == 0


def test_schema_is_draft_2020_12_and_closed() -> None:
    schema = shipped()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    options = prop.get("anyOf", [prop])
    return next(o for o in options if o.get("type") != "null")


def _nullable(prop: dict[str, Any]) -> bool:
    return any(o.get("type") == "null" for o in prop.get("anyOf", []))


def test_fields_required_and_nullability_match_the_struct() -> None:
    """Checked against msgspec's own view of the Struct, not against the derivation code."""
    schema = shipped()
    info = msgspec.inspect.type_info(Event)
    assert isinstance(info, msgspec.inspect.StructType)
    assert list(schema["properties"]) == list(FIELDS) == [f.name for f in info.fields]
    assert schema["required"] == list(FIELDS)
    assert all(f.required for f in info.fields)
    for f in info.fields:
        struct_nullable = isinstance(f.type, msgspec.inspect.UnionType) and any(
            isinstance(t, msgspec.inspect.NoneType) for t in f.type.types
        )
        assert _nullable(schema["properties"][f.name]) == struct_nullable, f.name


def test_enums_and_types_match_the_struct() -> None:
    props = shipped()["properties"]
    hints = typing.get_type_hints(Event, include_extras=True)
    assert set(props["event_type"]["enum"]) == set(typing.get_args(hints["event_type"])) == set(EVENT_TYPES)
    assert set(props["device_type"]["enum"]) == set(typing.get_args(hints["device_type"])) == set(DEVICE_TYPES)
    assert props["schema_version"]["enum"] == [1]
    assert _non_null(props["price"])["type"] == "number"  # money is a JSON number, not a string
    assert _non_null(props["revenue"])["type"] == "number"
    for name in ("event_id", "occurred_at", "user_id", "session_id", "page_url", "browser", "os", "country"):
        assert props[name]["type"] == "string", name


def test_string_limits_match_the_struct() -> None:
    props = shipped()["properties"]
    info = msgspec.inspect.type_info(Event)
    assert isinstance(info, msgspec.inspect.StructType)
    for f in info.fields:
        t = f.type
        if isinstance(t, msgspec.inspect.UnionType):
            t = next(x for x in t.types if not isinstance(x, msgspec.inspect.NoneType))
        if isinstance(t, msgspec.inspect.StrType) and t.max_length is not None:
            assert _non_null(props[f.name])["maxLength"] == t.max_length, f.name


def test_type_rules_are_in_the_schema() -> None:
    rules = shipped()["allOf"]
    by_field = {next(iter(r["then"]["properties"])): r for r in rules}
    assert set(by_field) == set(TYPE_RULES)
    for field, types in TYPE_RULES.items():
        cond = by_field[field]["if"]["properties"]["event_type"]
        assert set(cond.get("enum", [cond.get("const")])) == set(types)
        assert by_field[field]["else"]["properties"][field] == {"type": "null"}


# --- the schema and the decoder give the same verdicts -----------------------------------------
@pytest.fixture(scope="module")
def validator() -> Any:
    """A draft 2020-12 validator of the shipped file (jsonschema is a test dependency, locked)."""
    # Numbers as Decimal on both sides: with floats, multipleOf 0.01 misjudges 0.07.
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"), parse_float=Decimal)
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    return jsonschema.Draft202012Validator(schema)


def _schema_verdict(validator: Any, raw: bytes) -> bool | None:
    """True/False for a JSON message, None when it is not JSON text at all."""
    try:
        instance = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return None
    return validator.is_valid(instance)


def test_generated_events_are_valid_under_the_schema(validator: Any, day_stream: list[SimulatedMessage]) -> None:
    sample = day_stream[::211]
    assert len(sample) > 500
    for message in sample:
        assert _schema_verdict(validator, message.value) is True, message.value


def test_decoder_and_schema_agree_on_malformed_messages(
    validator: Any, day_stream: list[SimulatedMessage], end_time: dt.datetime
) -> None:
    """Every malformed variant that is JSON is rejected by both; time rules are decoder-only."""
    rng = random.Random(2026)
    decoder = EventDecoder()
    checked = 0
    for i, kind in enumerate(MALFORMED_KINDS * 60):
        base = day_stream[(i * 7919) % len(day_stream)]
        message = malformed_message(kind, rng, base.key, base.value)
        with pytest.raises(InvalidEvent):
            decoder.decode(message.value, end_time)
        verdict = _schema_verdict(validator, message.value)
        if verdict is None:
            continue
        assert message.expected is not None
        if message.expected[1] in ("in_future", "too_old"):
            assert verdict is True  # the schema cannot know the consumer's clock
        else:
            assert verdict is False, (kind, message.value[:300])
        checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    "overrides",
    [
        dict(search_query='naïve 👟 "quoted" \\ back'),
        dict(referrer="android-app://com.google.android.gm/", utm_source=None, utm_medium=None, utm_campaign=None),
        dict(referrer=None),
        dict(
            event_type="purchase",
            search_query=None,
            product_id="p-1",
            price=Decimal("1000000"),
            order_id="o-9",
            revenue=Decimal("0"),
        ),  # fmt: skip
        dict(event_type="click", search_query=None, element_id="x" * 256),
    ],
)
def test_decoder_and_schema_agree_on_edge_valid_events(
    validator: Any, overrides: dict[str, object], make_event: Any, end_time: dt.datetime
) -> None:
    raw = encode_event(make_event(**overrides))
    EventDecoder().decode(raw, end_time)
    assert _schema_verdict(validator, raw) is True
