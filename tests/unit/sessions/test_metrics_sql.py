"""The session merge statement against the table of session columns, as text (no server).

Whether the merge computes the right values is for the integration tests and their oracle;
this says, without a database, where a column's SQL is missing or written twice.
"""

from __future__ import annotations

import re

import pytest

from pipeline.sessions.columns import COLUMNS, Merge, SessionColumn, document_columns, names
from pipeline.sinks.postgres.metrics import NEW_EVENT_COLUMNS, metrics_sql, placeholders, template

# The steps of metrics.sql, each from its opening line to the next step's.
STEPS = {
    "per_event": ("WITH per_event AS (", "), batch AS ("),
    "merged": ("), merged AS (", "), written AS ("),
    "written": ("), written AS (", "ON CONFLICT"),
}
WHERE_WRITTEN = {Merge.SUM: "per_event", Merge.SQL: "merged", Merge.DERIVED: "written"}
"""Where metrics.sql must define a column (``... AS name``), by how it is merged."""


def step(text: str, name: str) -> str:
    begin, end = STEPS[name]
    start = text.index(begin)
    return text[start : text.index(end, start)]


def defines(text: str, column: str) -> bool:
    return re.search(rf"\bAS {column}\b", text) is not None


def test_every_placeholder_is_used_and_filled() -> None:
    used = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", template()))
    assert used == set(placeholders())
    assert "{{" not in metrics_sql() and "}}" not in metrics_sql()


@pytest.mark.parametrize("column", [c for c in COLUMNS if c.merge in WHERE_WRITTEN], ids=lambda c: c.name)
def test_each_hand_written_column_is_defined_in_its_step(column: SessionColumn) -> None:
    where = WHERE_WRITTEN[column.merge]
    text = template()
    assert defines(step(text, where), column.name), (
        f"{column.name} ({column.merge.value}) needs `... AS {column.name}` in the {where} step of metrics.sql"
    )
    elsewhere = [s for s in ("merged", "written") if s != where and defines(step(text, s), column.name)]
    assert not elsewhere, f"{column.name} is also defined in the {elsewhere} step of metrics.sql"


def test_generated_columns_are_not_also_written_by_hand() -> None:
    text = template()
    generated = names(merge=Merge.FIRST) + names(merge=Merge.SUM)
    twice = [c for c in generated if defines(step(text, "merged"), c) or defines(step(text, "written"), c)]
    assert not twice, f"generated from the table, but also merged by hand in metrics.sql: {twice}"


def test_the_upsert_and_the_document_list_the_table_s_columns() -> None:
    text = " ".join(re.sub(r"--[^\n]*", "", metrics_sql()).split())
    inserted = re.search(r"INSERT INTO sessions AS s \(([^)]*)\)", text)
    updated = re.search(r"ON CONFLICT \(session_id\) DO UPDATE SET (.*?) RETURNING s\.\*", text)
    document = re.search(r"\) SELECT ([^()]*?) FROM latest$", text.rstrip())
    assert inserted and updated and document
    assert [c.strip() for c in inserted[1].split(",")] == list(names())
    assert [u.strip() for u in updated[1].split(",")] == [f"{c} = excluded.{c}" for c in names() if c != "session_id"]
    assert [c.strip() for c in document[1].split(",")] == [c.name for c in document_columns()]


def test_the_merge_reads_each_first_event_field_of_the_new_events() -> None:
    assert set(names(merge=Merge.FIRST)) <= set(NEW_EVENT_COLUMNS)
