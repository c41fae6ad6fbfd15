"""What the consumer hands to the sinks, and what a sink hands back about an event it will not take.

A batch's events are stored in PostgreSQL and indexed in OpenSearch inside one PostgreSQL
transaction (see ``pipeline.sinks.writer``); the session rows that transaction returns
are what OpenSearch indexes after the commit, so each session document is exactly the
current PostgreSQL row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipeline.contract.event import Event
from pipeline.events.decode import Reason


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded, valid event and where it was read from."""

    event: Event
    partition: int
    offset: int
    ingested_at: dt.datetime


SessionRow = dict[str, Any]
"""A ``sessions`` row as PostgreSQL returned it: column name to value (datetime, Decimal, ...)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A valid event (one message: ``envelope``) that will not be stored, and why.

    ``reason`` is one of the consumer's reasons (``refused_by_postgres``,
    ``refused_by_opensearch``, ``conflicting_duplicate``); ``detail`` is the sink's own
    words, ``field`` the field it named, if any. The consumer dead-letters the message.
    """

    envelope: Envelope
    reason: Reason
    field: str | None
    detail: str
    error: str = ""
    """What two refusals share when they are the same error (a SQLSTATE, an OpenSearch error type)."""


def first_copies(envelopes: Sequence[Envelope]) -> tuple[list[Envelope], list[Envelope]]:
    """(the first envelope of each ``event_id``, in batch order; every later one).

    A batch that holds one event twice stores the first copy; what happens to the later
    ones is decided by comparing them with whichever copy ends up stored.
    """
    first: dict[str, Envelope] = {}
    later: list[Envelope] = []
    for envelope in envelopes:
        event_id = envelope.event.event_id
        if event_id in first:
            later.append(envelope)
        else:
            first[event_id] = envelope
    return list(first.values()), later


SYSTEMIC_MIN_EVENTS: Final = 10
"""How many events a batch must hold before "all refused with the same error" is read as the
sink's fault rather than the events'. Fewer, and each refused event is dead-lettered: a
sink that refuses everything still meets a batch this size soon on any busy stream, while
a handful of bad messages arriving together on an idle one cannot stop the pipeline."""


def refused_alike(refusals: Sequence[Refusal], events: int) -> bool:
    """Did the sink refuse every one of ``events`` (at least :data:`SYSTEMIC_MIN_EVENTS`) with the same error?"""
    return len(refusals) == events >= SYSTEMIC_MIN_EVENTS and len({r.error for r in refusals}) == 1
