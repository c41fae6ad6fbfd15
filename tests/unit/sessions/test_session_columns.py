"""The table of session columns, and what is generated from it, checked without a server."""

from __future__ import annotations

import ast
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

from pipeline.sessions.columns import COLUMNS, Part, markdown_table, names
from tests.conftest import REPO_ROOT
from tests.support import truth

README = REPO_ROOT / "README.md"
BEGIN = "<!-- session-columns: generated from pipeline/sessions/columns.py (markdown_table) -->\n"
END = "<!-- /session-columns -->"

# What each PostgreSQL type becomes in a session document (pipeline.sinks.opensearch.documents
# turns numeric into a JSON number, timestamps into ISO strings), and so the field it needs.
OPENSEARCH_FOR_SQL = {
    "text": "keyword",
    "integer": "integer",
    "bigint": "long",
    "numeric": "double",
    "timestamp with time zone": "date",
    "boolean": "boolean",
}


def test_each_column_s_opensearch_type_fits_its_postgresql_type() -> None:
    wrong = {}
    for column in COLUMNS:
        if column.part is Part.STATE:
            continue
        base = re.sub(r"\(.*?\)| COLLATE \S+| NOT NULL", "", column.sql_type)
        if OPENSEARCH_FOR_SQL.get(base) != column.opensearch:
            wrong[column.name] = (column.sql_type, column.opensearch)
    assert not wrong, f"(PostgreSQL, OpenSearch) types that do not fit: {wrong}"


def test_the_readme_table_is_generated_from_the_table() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, f"README.md lost the markers of the session-columns table: {BEGIN!r}"
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert shown == markdown_table(), (
        "README.md's table of session columns is out of date; replace the lines between its markers with:\n\n"
        + markdown_table()
    )


def test_the_oracle_computes_every_metric_of_the_table() -> None:
    """One line per metric in tests/support/truth.py: a column added to the table without one fails here."""
    event = {
        "event_id": "e-1",
        "session_id": "s-1",
        "event_type": "page_view",
        "occurred_at": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
        "user_id": "u-1",
        "page_url": "https://shop.example.com/",
        "referrer": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "device_type": "desktop",
        "browser": "Firefox",
        "os": "Linux",
        "country": "DE",
        "revenue": Decimal(0),
    }
    computed = tuple(truth.expected_sessions([event])["s-1"])
    metrics = names(part=Part.METRIC)
    assert computed == metrics, (
        f"tests/support/truth.py computes {sorted(set(computed) - set(metrics))} that the table lacks, "
        f"and lacks {sorted(set(metrics) - set(computed))} (in table order: {metrics})"
    )


def test_the_oracle_is_independent_of_the_production_code() -> None:
    """Expected values must not come from what they check: the oracle imports nothing of ``pipeline``."""
    tree = ast.parse(Path(truth.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] == "pipeline"], imported
