"""Several batches written at once by one consumer, landed strictly in the order they were read.

With network latency a consumer that writes one batch at a time waits for every round
trip of it in turn. A window of ``K`` writers (each its own PostgreSQL connection and
OpenSearch client, so nothing is shared between threads) lets batch N+1 be stored while
batch N is still in OpenSearch or committing. Everything that touches Kafka (reading,
dead letters, commits, waiting out an outage) stays on the consumer's own thread, which
lands the batches one by one in reading order: a batch is committed only after it and
every batch before it are written everywhere.

One order is kept between the writers: a batch's first insert waits until the batch
before it has done its own (:class:`Turn`). PostgreSQL makes a transaction inserting an
``event_id`` wait for any other open transaction that inserted it, so with the inserts
started in reading order the copy of an event that is stored is the one read first, as
when the batches are written one after another.

With ``K = 1`` the work runs on the calling thread: no pool, no second connection.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

W = TypeVar("W")
P = TypeVar("P")


class Turn:
    """The insert order of consecutive batches: :meth:`wait` returns once the previous batch's
    first insert is done (or its write ended without one); :meth:`done` says the same of this batch."""

    def __init__(self, previous: Turn | None) -> None:
        self._previous = previous
        self._done = threading.Event()

    def wait(self) -> None:
        if self._previous is not None:
            self._previous._done.wait()
            self._previous = None  # no chain of every batch ever read

    def done(self) -> None:
        self._done.set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()


@dataclass(eq=False)
class Flight(Generic[W, P]):
    """One batch being written: its payload, the writer it has, its turn, and the outcome."""

    payload: P
    writer: W
    turn: Turn
    future: Future[None]


class Window(Generic[W, P]):
    """At most ``len(writers)`` batches written at once; :meth:`land` hands them back in launch order."""

    def __init__(self, writers: Sequence[W]) -> None:
        if not writers:
            raise ValueError("a window needs at least one writer")
        self.size = len(writers)
        self._free: deque[W] = deque(writers)
        self._flights: deque[Flight[W, P]] = deque()
        self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="batch-writer") if self.size > 1 else None

    @property
    def full(self) -> bool:
        return not self._free

    @property
    def empty(self) -> bool:
        return not self._flights

    def __len__(self) -> int:
        return len(self._flights)

    def launch(self, payload: P, write: Callable[[W, Turn, P], None]) -> Flight[W, P]:
        """Start ``write(writer, turn, payload)`` on a free writer (on this thread when ``K = 1``).

        The turn is marked done when ``write`` returns or raises, whatever it did; ``write``
        marks it earlier itself, right after its first insert. An exception is kept in the
        flight's future for :meth:`land`.
        """
        if self.full:
            raise RuntimeError("every writer is busy: land a batch first")
        writer = self._free.popleft()
        turn = Turn(self._flights[-1].turn if self._flights else None)

        def run() -> None:
            try:
                write(writer, turn, payload)
            finally:
                turn.done()

        if self._pool is None:
            future: Future[None] = Future()
            try:
                run()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)
        else:
            future = self._pool.submit(run)
        flight = Flight(payload, writer, turn, future)
        self._flights.append(flight)
        return flight

    def land(self, *, block: bool) -> Flight[W, P] | None:
        """The oldest flight once its write has ended (waiting for it if ``block``), else None.

        Its writer is free again only when the caller calls :meth:`release`: until then the
        caller may retry the write on it (on this thread).
        """
        if not self._flights:
            return None
        oldest = self._flights[0]
        if not block and not oldest.future.done():
            return None
        wait([oldest.future])
        return self._flights.popleft()

    def release(self, flight: Flight[W, P]) -> None:
        """The landed flight's writer may take a new batch."""
        self._free.append(flight.writer)

    def close(self) -> None:
        """Wait for every write under way to end (their outcome is dropped: nothing of theirs is committed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._flights.clear()
