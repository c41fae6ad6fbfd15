"""The table of session columns, and what is generated from it, checked without a server."""

from __future__ import annotations

import re

from pipeline.sessions.columns import COLUMNS, Part

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
