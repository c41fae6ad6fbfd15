"""Session metrics, defined once: in SQL, in ``metrics.sql`` next to this file.

Why SQL and not Python: a session's metrics depend on ALL of its events, which may
arrive over many batches, out of order, duplicated, or through two consumer processes.
Only the database sees all of them at once, so the definition lives in the one statement
that recomputes a session from the ``events`` table and upserts it into ``sessions``.
The PostgreSQL sink runs it; nothing else computes session metrics.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def metrics_sql() -> str:
    """The session upsert (``metrics.sql``); its one parameter is ``session_ids`` (text[])."""
    return resources.files(__package__).joinpath("metrics.sql").read_text(encoding="utf-8")
