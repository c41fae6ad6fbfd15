"""The saved-objects NDJSON codec: canonical round trip for any objects, one clear error for any bad text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.dashboards.ndjson import Reference, SavedObject, SavedObjectsFileError, dumps, loads

names = st.text(min_size=1, max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
saved_objects = st.builds(
    SavedObject,
    type=names,
    id=names,
    attributes=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    references=st.lists(st.builds(Reference, names, names, names), max_size=3).map(tuple),
)


@given(st.lists(saved_objects, max_size=6, unique_by=lambda o: (o.type, o.id)))
def test_any_objects_round_trip_through_the_canonical_text(objects: list[SavedObject]) -> None:
    text = dumps(objects)
    assert loads(text) == objects
    assert dumps(loads(text)) == text
    assert text.count(b"\n") == len(objects)  # one object a line, even with newlines inside strings


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_with_a_line_number(text: str) -> None:
    try:
        objects = loads(text)
    except SavedObjectsFileError as exc:
        assert str(exc).startswith("saved objects") and "\n" not in str(exc)
    else:
        assert all(isinstance(o, SavedObject) for o in objects)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        loads(data)
    except SavedObjectsFileError:
        pass


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"type":"visualization","attributes":{}}', "'id' must be a non-empty string"),
        ('{"type":"visualization","id":"v","attributes":[]}', "'attributes' must be an object"),
        ('{"type":"dashboard","id":"d","attributes":{},"references":[{"name":"p","type":"x"}]}', "every reference"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_malformed_lines_name_the_line_and_the_problem(line: str, why: str) -> None:
    good = json.dumps({"type": "index-pattern", "id": "p", "attributes": {"title": "x"}})
    with pytest.raises(SavedObjectsFileError, match="line 3") as err:
        loads(f"{good}\n\n{line}\n")
    assert why in str(err.value)


def test_a_repeated_id_is_refused() -> None:
    line = json.dumps({"type": "index-pattern", "id": "p", "attributes": {}})
    with pytest.raises(SavedObjectsFileError, match="appears twice"):
        loads(f"{line}\n{line}\n")
