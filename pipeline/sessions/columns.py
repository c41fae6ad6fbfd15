"""Every column of the ``sessions`` table, declared once (pure: no I/O, no driver).

One row per column: its name, its PostgreSQL type (as the catalog prints it, with
``COLLATE`` and ``NOT NULL``), its OpenSearch type, how the session merge produces it and
what it means. The rest is made from this table or held to it:

* the OpenSearch sessions mapping is generated from it (``pipeline.sinks.opensearch.mappings``);
* so are the column lists of the merge statement (``pipeline/sinks/postgres/metrics.sql``,
  rendered by ``pipeline.sinks.postgres.metrics``) and the columns it reads of each new
  event, leaving only each metric's own SQL hand-written;
* the migrations are checked against it: a test compares it with the catalog of a freshly
  migrated database;
* the README's table of session columns is generated from it (:func:`markdown_table`;
  a test holds the two equal).

The meaning of a metric is said in words here and computed three times elsewhere, on
purpose: by the merge in SQL, and in plain Python by the tests' oracle
(``tests/support/truth.py``), which must not read this table's derivations.
``docs/how-to-add-a-session-metric.md`` lists the edits a new metric takes.

"Earliest" and "latest" are by ``(occurred_at, event_id)``, so events with the same
timestamp are ordered by their id and every run picks the same one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final


class Merge(Enum):
    """How the merge statement produces a column from the stored row and a batch's new events."""

    KEY = "the key"
    FIRST = "from the earliest event"
    """The event field of the same name, from the session's earliest event: SQL generated."""
    SUM = "summed over the events"
    """A per-event aggregate written in SQL (``per_event``), added to the stored value: the addition is generated."""
    SQL = "merged in SQL"
    """Merged by an expression written in SQL (``merged``): a least, a greatest, an earliest or latest by key."""
    DERIVED = "derived at every write"
    """A function of the merged columns, written in SQL, recomputed at every write (the laterals after ``merged``)."""


class Part(Enum):
    METRIC = "metric"
    """In the session document, and computed from the session's events (what the tests' oracle computes)."""
    BOOKKEEPING = "bookkeeping"
    """In the session document, but about the row's writes rather than the events."""
    STATE = "merge state"
    """Only in the table: what the next merge compares against; never indexed."""


@dataclass(frozen=True, slots=True)
class SessionColumn:
    name: str
    sql_type: str
    """As PostgreSQL's catalog prints it: ``format_type``, then ``COLLATE "C"`` and ``NOT NULL`` when so."""
    opensearch: str | None
    """The OpenSearch field type; None for merge state."""
    merge: Merge
    meaning: str
    part: Part = Part.METRIC

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"session column {self.name!r}: not a plain lower-case SQL identifier")
        if (self.opensearch is None) != (self.part is Part.STATE):
            raise ValueError(f"session column {self.name!r}: merge state, and only merge state, has no OpenSearch type")

    @property
    def nullable(self) -> bool:
        return not self.sql_type.endswith(" NOT NULL")


# PostgreSQL types, spelled as the catalog prints them.
_ID: Final = 'text COLLATE "C" NOT NULL'
_TEXT: Final = "text NOT NULL"
_TEXT_OR_NULL: Final = "text"
_COUNT: Final = "integer NOT NULL"
_TIME: Final = "timestamp with time zone NOT NULL"
_TIME_OR_NULL: Final = "timestamp with time zone"
_FLAG: Final = "boolean NOT NULL"

_C = SessionColumn
_EARLIEST = "from the earliest event"
_STATE = Part.STATE

COLUMNS: Final[tuple[SessionColumn, ...]] = (
    _C("session_id", _ID, "keyword", Merge.KEY, "the session, as the tracker assigned it: one row each"),
    _C("user_id", _ID, "keyword", Merge.FIRST, _EARLIEST),
    _C("started_at", _TIME, "date", Merge.SQL, "earliest `occurred_at`"),
    _C("ended_at", _TIME, "date", Merge.SQL, "latest `occurred_at`"),
    _C("duration_s", "numeric(12,3) NOT NULL", "double", Merge.DERIVED, "`ended_at` - `started_at` in seconds"),
    _C("events", _COUNT, "integer", Merge.SUM, "number of events (each `event_id` once)"),
    _C("page_views", _COUNT, "integer", Merge.SUM, "number of `page_view` events"),
    _C("unique_pages", _COUNT, "integer", Merge.DERIVED, "number of distinct page paths viewed"),
    _C("clicks", _COUNT, "integer", Merge.SUM, "number of `click` events"),
    _C("searches", _COUNT, "integer", Merge.SUM, "number of `search` events"),
    _C("add_to_carts", _COUNT, "integer", Merge.SUM, "number of `add_to_cart` events"),
    _C("purchases", _COUNT, "integer", Merge.SUM, "number of `purchase` events"),
    _C("revenue", "numeric(16,2) NOT NULL", "double", Merge.SUM, "sum of `revenue` over the purchases (0 without)"),
    _C("landing_page", _TEXT_OR_NULL, "keyword", Merge.SQL, "page path of the earliest page view (null without)"),
    _C("exit_page", _TEXT_OR_NULL, "keyword", Merge.SQL, "page path of the latest page view (null without)"),
    _C("referrer", _TEXT_OR_NULL, "keyword", Merge.FIRST, _EARLIEST),
    _C("utm_source", _TEXT_OR_NULL, "keyword", Merge.FIRST, _EARLIEST),
    _C("utm_medium", _TEXT_OR_NULL, "keyword", Merge.FIRST, _EARLIEST),
    _C("utm_campaign", _TEXT_OR_NULL, "keyword", Merge.FIRST, _EARLIEST),
    _C("device_type", _TEXT, "keyword", Merge.FIRST, _EARLIEST),
    _C("browser", _TEXT, "keyword", Merge.FIRST, _EARLIEST),
    _C("os", _TEXT, "keyword", Merge.FIRST, _EARLIEST),
    _C("country", _TEXT, "keyword", Merge.FIRST, _EARLIEST),
    _C("converted", _FLAG, "boolean", Merge.DERIVED, "`purchases` > 0"),
    _C("is_engaged", _FLAG, "boolean", Merge.DERIVED, "`duration_s` >= 10 or `page_views` >= 2 or `converted` (GA4)"),
    _C("is_bounce", _FLAG, "boolean", Merge.DERIVED, "not `is_engaged`"),
    _C(
        "version",
        "bigint NOT NULL",
        "long",
        Merge.SQL,
        "1 at the first write, +1 at every write that merges new events (OpenSearch's external version)",
        Part.BOOKKEEPING,
    ),
    _C("updated_at", _TIME, "date", Merge.DERIVED, "time of the last transaction that wrote the row", Part.BOOKKEEPING),
    _C("first_event_id", "uuid NOT NULL", None, Merge.SQL, "`event_id` of the earliest event", _STATE),
    _C("landing_event_at", _TIME_OR_NULL, None, Merge.SQL, "`occurred_at` of the earliest page view", _STATE),
    _C("landing_event_id", "uuid", None, Merge.SQL, "`event_id` of the earliest page view", _STATE),
    _C("exit_event_at", _TIME_OR_NULL, None, Merge.SQL, "`occurred_at` of the latest page view", _STATE),
    _C("exit_event_id", "uuid", None, Merge.SQL, "`event_id` of the latest page view", _STATE),
    _C("viewed_paths", 'text[] COLLATE "C" NOT NULL', None, Merge.SQL, "the distinct page paths viewed", _STATE),
)
"""The ``sessions`` table, in document order (the order of a session document's fields)."""


def names(*, part: Part | None = None, merge: Merge | None = None) -> tuple[str, ...]:
    """Column names in table order, optionally only those of one part or one kind of merge."""
    return tuple(c.name for c in COLUMNS if (part is None or c.part is part) and (merge is None or c.merge is merge))


def document_columns() -> tuple[SessionColumn, ...]:
    """The columns of a session document (every column but the merge state), in order."""
    return tuple(c for c in COLUMNS if c.part is not Part.STATE)


def markdown_table() -> str:
    """The README's table of the session document's columns."""
    lines = ["| column | meaning | PostgreSQL | OpenSearch |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.meaning} | `{c.sql_type}` | `{c.opensearch}` |" for c in document_columns()]
    return "\n".join(lines) + "\n"


if len(set(names())) != len(COLUMNS):
    raise ValueError("two session columns share a name")

__all__ = ["COLUMNS", "Merge", "Part", "SessionColumn", "document_columns", "markdown_table", "names"]
