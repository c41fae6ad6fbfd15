"""What the consumer hands to the sinks: valid events with their Kafka coordinates.

A batch is written to PostgreSQL first (events, then the sessions they touch, in one
transaction); the session rows that transaction returns are what OpenSearch indexes,
so each session document is exactly the current PostgreSQL row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pipeline.events.contract import Event


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded, valid event and where it was read from."""

    event: Event
    partition: int
    offset: int
    ingested_at: dt.datetime


SessionRow = dict[str, Any]
"""A ``sessions`` row as PostgreSQL returned it: column name to value (datetime, Decimal, ...)."""
