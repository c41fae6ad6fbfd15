"""The migrations against the table of session columns: what a migrated database really has."""

from __future__ import annotations

import psycopg

from pipeline.config.settings import Settings
from pipeline.sessions.columns import COLUMNS

CATALOG = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attcollation NOT IN (0, t.typcollation) THEN ' COLLATE ' || quote_ident(c.collname) ELSE '' END
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
FROM pg_attribute AS a
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_collation AS c ON c.oid = a.attcollation
WHERE a.attrelid = 'sessions'::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""


def test_the_migrated_sessions_table_has_exactly_the_declared_columns_and_types(migrated_db: Settings) -> None:
    with psycopg.connect(migrated_db.postgres.conninfo("admin")) as conn:
        live = dict(conn.execute(CATALOG).fetchall())
    declared = {c.name: c.sql_type for c in COLUMNS}
    missing = {n: t for n, t in declared.items() if n not in live}
    undeclared = {n: t for n, t in live.items() if n not in declared}
    differ = {n: (declared[n], live[n]) for n in declared.keys() & live.keys() if declared[n] != live[n]}
    assert not missing, f"declared in pipeline/sessions/columns.py, but no migration creates them: {missing}"
    assert not undeclared, f"in the migrated table, but not declared in pipeline/sessions/columns.py: {undeclared}"
    assert not differ, f"(declared, migrated) types differ: {differ}"
