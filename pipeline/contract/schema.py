"""Derive the JSON Schema (draft 2020-12) of the event contract from the ``Event`` Struct.

Why derive instead of hand-writing: the Struct is the one definition of the event; the
shipped ``clickstream-event.v1.schema.json`` is this module's output, and a unit test
fails if the file differs from a fresh derivation. To change the contract, edit
``pipeline/contract/event.py`` and run::

    python -m pipeline.contract.schema --write

What msgspec cannot express is added here from the contract's own constants: decimals
as JSON numbers with their bounds, and the per-event-type rules (``TYPE_RULES``) as
``if``/``then``/``else`` clauses. The time-window rule (not in the future, not older
than the consumer's max age) depends on the consumer's clock and has no JSON Schema form.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from pipeline.contract.event import (
    EVENT_TYPES,
    MONEY_DECIMALS,
    MONEY_TEXT_MAX,
    PRICE_MAX,
    REVENUE_MAX,
    TYPE_RULES,
    Event,
)

SCHEMA_PATH: Final = Path(__file__).with_name("clickstream-event.v1.schema.json")
SCHEMA_ID: Final = "urn:clickstream:schema:event:v1"
DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"


def _number(exclusive_minimum: int | None, minimum: int | None, maximum: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number"}
    if exclusive_minimum is not None:
        out["exclusiveMinimum"] = exclusive_minimum
    if minimum is not None:
        out["minimum"] = minimum
    out["maximum"] = maximum
    out["multipleOf"] = 0.01
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _type_rule(field: str, types: frozenset[str], non_null: dict[str, Any]) -> dict[str, Any]:
    ordered = [t for t in EVENT_TYPES if t in types]
    condition: dict[str, Any] = {"const": ordered[0]} if len(ordered) == 1 else {"enum": ordered}
    return {
        "if": {"properties": {"event_type": condition}},
        "then": {"properties": {field: non_null}},
        "else": {"properties": {field: {"type": "null"}}},
    }


def derive_schema() -> dict[str, Any]:
    """The JSON Schema of ``Event``, as a plain dict (key order is the file's order)."""
    generated = msgspec.json.schema(Event)
    body = generated["$defs"]["Event"]
    properties: dict[str, Any] = body["properties"]
    price = _number(0, None, int(PRICE_MAX))
    revenue = _number(None, 0, int(REVENUE_MAX))
    # msgspec describes Decimal as a string; the contract puts money on the wire as numbers.
    properties["price"] = _nullable(price)
    properties["revenue"] = _nullable(revenue)

    non_null: dict[str, dict[str, Any]] = {"price": price, "revenue": revenue}
    rules = []
    for field, types in TYPE_RULES.items():
        if field in non_null:
            required_form = non_null[field]
        else:
            required_form = next(s for s in properties[field]["anyOf"] if s.get("type") != "null")
        rules.append(_type_rule(field, types, required_form))

    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "Clickstream event v1",
        "description": (
            "One clickstream event. Generated from pipeline.contract.event.Event by "
            "pipeline.contract.schema; do not edit by hand. Not expressible here: the consumer "
            "also rejects events more than 10 minutes in its future or older than its max age, "
            f"objects with a key written twice (compared after unescaping), and price or revenue "
            f"written with more than {MONEY_TEXT_MAX} characters; it stores money with exactly "
            f"{MONEY_DECIMALS} decimals."
        ),
        "type": "object",
        "properties": properties,
        "required": body["required"],
        "additionalProperties": False,
        "allOf": rules,
    }


def render_schema() -> str:
    """The exact text of the shipped schema file."""
    return json.dumps(derive_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``--write`` regenerates the file; ``--check`` exits 1 if it is stale; default prints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {SCHEMA_PATH.name}")
    group.add_argument("--check", action="store_true", help="fail if the shipped file is stale")
    args = parser.parse_args(argv)
    text = render_schema()
    if args.write:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is stale: run python -m pipeline.contract.schema --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
