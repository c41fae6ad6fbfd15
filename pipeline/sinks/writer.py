"""One batch into both sinks, so that PostgreSQL and OpenSearch agree by construction.

The rule: **the first stored copy of an event wins, everywhere.** PostgreSQL decides which
copy that is (its primary key on ``event_id``), and OpenSearch only ever receives the
copies PostgreSQL has just inserted, written while the inserting transaction is still
open:

1. In the batch's PostgreSQL transaction, insert the first copy of each ``event_id``
   (``ON CONFLICT DO NOTHING``); events PostgreSQL refuses are isolated and left out.
2. Index exactly the inserted events in OpenSearch, with the external version the
   transaction drew after its inserts. A replay or a duplicate inserts nothing, so it
   costs no OpenSearch write and changes no document.
3. Events OpenSearch refuses for good are taken back (savepoint) and the batch is
   inserted again without them (then indexed again with a new, higher version): an event
   is in both stores or in neither.
4. Later copies of an event are compared with the copy that is stored; one whose
   content differs is a conflicting duplicate, dead-lettered; an identical one is dropped.
5. Merge the sessions, commit. The caller then indexes the session rows (versioned,
   so a replay re-sends them at no cost) and dead-letters every refusal.

Why OpenSearch before the commit: a crash between the two leaves a document whose row
was never committed; the replay inserts the row again and writes the document again with
a higher version, so the document is overwritten once with the row that is committed. The
reverse order would leave committed rows that OpenSearch never learns about (the replay
inserts nothing, so it would index nothing). Why versions rather than ``op_type=create``:
a transaction inserting an ``event_id`` waits on the key for any other open transaction
holding it, and draws its version only after its insert finished, so when two processes
race with two different copies of one event (and one of them dies half-way), the copy of
the transaction that commits always carries the highest version: OpenSearch keeps it
whatever order the writes arrive in, and a late write of an aborted attempt is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.contract.event import FIELDS
from pipeline.events.decode import Reason
from pipeline.sinks.batch import Envelope, Refusal, SessionRow, first_copies
from pipeline.sinks.opensearch.index import OpenSearchIndex
from pipeline.sinks.postgres.store import EventTransaction, PostgresStore


@dataclass
class BatchResult:
    """What :meth:`BatchWriter.store` did: the session rows to index and the messages to dead-letter."""

    sessions: list[SessionRow]
    refused: list[Refusal]
    stored: int
    """Events inserted (and indexed) by this call."""
    seconds: dict[str, float] = field(default_factory=lambda: {"postgres": 0.0, "opensearch": 0.0})


class BatchWriter:
    """Writes batches through one PostgreSQL store and one OpenSearch sink (see the module docstring).

    ``before_commit`` is called after the OpenSearch event write, right before the
    PostgreSQL commit (the crash tests' fault hook uses it).
    """

    def __init__(
        self, postgres: PostgresStore, opensearch: OpenSearchIndex, *, before_commit: Callable[[], None] | None = None
    ) -> None:
        self.postgres = postgres
        self.opensearch = opensearch
        self._before_commit = before_commit

    def store(self, envelopes: Sequence[Envelope], *, inserted: Callable[[], None] | None = None) -> BatchResult:
        """Steps 1 to 5 of the module docstring for one batch; safe to call again after a failure.

        ``inserted`` is called once, right after the batch's first insert statement: from then
        on, another transaction inserting one of these ``event_id`` waits for this one (the
        consumer starts the next batch's inserts only then; see ``pipeline.jobs.in_flight``).
        """
        started = time.perf_counter()
        opensearch_s = 0.0
        refused: list[Refusal] = []
        out: set[int] = set()
        with self.postgres.transaction() as tx:
            while True:
                unique, later = first_copies([e for e in envelopes if id(e) not in out])
                stored = tx.insert(unique)
                if inserted is not None:
                    inserted()
                    inserted = None
                if stored.refused and _refuse(stored.refused, later, refused, out):
                    tx.undo()  # a later copy of a refused event is now a first copy: insert again
                    continue
                mark = time.perf_counter()
                from_opensearch = (
                    self.opensearch.index_events(stored.inserted, stored.version) if stored.inserted else []
                )
                opensearch_s += time.perf_counter() - mark
                if not from_opensearch:
                    break
                _refuse(from_opensearch, later, refused, out)
                tx.undo()
            refused.extend(_conflicts(tx, stored.inserted, stored.not_inserted, later, out))
            sessions = tx.merge([e.event.session_id for e in envelopes if id(e) not in out])
            if self._before_commit is not None:
                self._before_commit()
        total = time.perf_counter() - started
        return BatchResult(
            sessions, refused, len(stored.inserted), {"postgres": total - opensearch_s, "opensearch": opensearch_s}
        )

    def index_sessions(self, sessions: Sequence[SessionRow]) -> float:
        """Index the committed session rows; returns the seconds it took."""
        mark = time.perf_counter()
        self.opensearch.index_sessions(sessions)
        return time.perf_counter() - mark


def _refuse(new: Sequence[Refusal], later: Sequence[Envelope], refused: list[Refusal], out: set[int]) -> bool:
    """Record refusals, and the same refusal for every identical later copy; True if a different copy waits."""
    gone = {r.envelope.event.event_id: r for r in new}
    for refusal in new:
        refused.append(refusal)
        out.add(id(refusal.envelope))
    waiting = False
    for envelope in later:
        first = gone.get(envelope.event.event_id)
        if first is None:
            continue
        if envelope.event == first.envelope.event:
            refused.append(Refusal(envelope, first.reason, first.field, first.detail, first.error))
            out.add(id(envelope))
        else:
            waiting = True
    return waiting


def _conflicts(
    tx: EventTransaction,
    inserted: Sequence[Envelope],
    not_inserted: Sequence[Envelope],
    later: Sequence[Envelope],
    out: set[int],
) -> list[Refusal]:
    """Copies whose content differs from the stored copy of their ``event_id`` (step 4)."""
    winners: dict[str, tuple[Any, ...]] = {e.event.event_id: _content(e) for e in inserted}
    if not not_inserted and not later:
        return []
    winners.update(tx.stored_copies([e.event.event_id for e in not_inserted]))
    conflicts = []
    for envelope in (*not_inserted, *later):
        if id(envelope) in out:
            continue
        stored = winners.get(envelope.event.event_id)
        if stored is None:
            continue  # its first copy was refused and this one differs: it had its own turn
        mine = _content(envelope)
        if mine != stored:
            differs = next(name for name, a, b in zip(FIELDS, mine, stored, strict=True) if a != b)
            conflicts.append(
                Refusal(
                    envelope,
                    Reason.CONFLICTING_DUPLICATE,
                    differs,
                    f"event {envelope.event.event_id} is already stored with different content "
                    f"(first difference: {differs}); the first stored copy wins",
                    Reason.CONFLICTING_DUPLICATE.value,
                )
            )
    return conflicts


def _content(envelope: Envelope) -> tuple[Any, ...]:
    """The event's contract fields in ``FIELDS`` order: what two copies must share to be the same event."""
    return msgspec.structs.astuple(envelope.event)
