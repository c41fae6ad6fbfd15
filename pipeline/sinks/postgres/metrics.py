"""The session merge statement: ``metrics.sql`` with its column lists filled from the table of session columns.

Why SQL and not Python: a session's metrics depend on ALL of its events, which may
arrive over many batches, out of order, duplicated, or through two consumer processes.
Only the database sees all of them at once, so the merge lives in the one statement that
folds a batch's new events into the stored rows (``metrics.sql``; why the fold is exact
is said there). The PostgreSQL sink runs it; nothing else computes session metrics.

What the statement says of every column alike (the upsert's column list, its SET list,
the document's columns, and the merges of the columns taken from the earliest event or
summed over the events) is generated here from ``pipeline.sessions.columns``, once, when
the statement is first used; ``metrics.sql`` keeps only what is particular to a metric.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

from pipeline.sessions.columns import Merge, document_columns, names
from pipeline.sinks.postgres.migrate import render

_FIRST: Final = names(merge=Merge.FIRST)

NEW_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "session_id",
    "event_id",
    "occurred_at",
    "event_type",
    "page_path",
    "revenue",
    *_FIRST,
)
"""The columns of ``events_new``: what the merge reads of each newly stored event (the
fields taken from a session's earliest event among them, each named as its column)."""

_LIST: Final = ",\n           "


def placeholders() -> dict[str, str]:
    """The SQL each ``{{name}}`` of ``metrics.sql`` stands for."""
    key = names(merge=Merge.KEY)
    return {
        "first_event_values": ", ".join(f"n.{c}" for c in _FIRST),
        "first_event_merges": _LIST.join(
            f"CASE WHEN wins.first_event THEN b.{c} ELSE o.{c} END AS {c}" for c in _FIRST
        ),
        "sum_merges": _LIST.join(f"coalesce(o.{c}, 0) + b.{c} AS {c}" for c in names(merge=Merge.SUM)),
        "stored_columns": ", ".join(names()),
        "updates": ", ".join(f"{c} = excluded.{c}" for c in names() if c not in key),
        "document_columns": ", ".join(c.name for c in document_columns()),
    }


def template() -> str:
    """``metrics.sql`` as written, placeholders and all."""
    return resources.files(__package__).joinpath("metrics.sql").read_text(encoding="utf-8")


@cache
def metrics_sql() -> str:
    """The session merge; its one parameter is ``session_ids`` (text[]), every session of the batch."""
    return render(template(), placeholders(), source="metrics.sql")
