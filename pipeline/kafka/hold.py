"""Waiting out a sink outage without leaving the consumer group.

While a sink is down the batch in hand is neither committed nor skipped: the member
pauses every partition it owns and keeps polling in short slices, which serves
heartbeats and rebalances (and keeps the classic protocol's ``max.poll.interval.ms``
from expiring) without reading on. A poll may still hand out messages, from a partition
assigned before its pause took effect: each is rewound and paused (so a resumed
partition fetches it again) and returned with the write's result, to be processed after
the batch in hand. Between attempts the wait grows as :class:`Backoff` says; a stop
request cuts the wait short, the write is tried once more, and if the sink is still down
the failure is raised.

The member is anything with the four operations of :class:`HeldMember`, so these
decisions are tested without a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pipeline.errors import SinkUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts at a sink that is down, and how long each poll may block."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    poll_s: float = 0.5
    """The longest single poll while held: the member answers rebalances at least this often."""

    def delays(self) -> Iterator[float]:
        """Seconds to wait before each retry: ``first_s``, then growing by ``factor`` up to ``max_s``."""
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


class HeldMember(Protocol[M]):
    """What the hold controller needs of a group member."""

    def pause_all(self) -> None:
        """Pause every partition owned now and any assigned until ``resume_all``."""

    def resume_all(self) -> None: ...

    def poll_held(self, timeout: float) -> list[M]:
        """Serve the group for up to ``timeout`` seconds; the data messages it delivered."""
        ...

    def rewind(self, message: M) -> None:
        """Move the message's partition back to it and pause that partition."""


@dataclass(frozen=True, slots=True)
class Held(Generic[T, M]):
    """What a write returned, what the wait delivered (to process next), and how often it was retried."""

    value: T
    reread: list[M]
    retries: int


class HoldController(Generic[M]):
    """Retries a write while its sink is down, holding the member's partitions meanwhile."""

    def __init__(
        self,
        member: HeldMember[M],
        backoff: Backoff,
        *,
        stopping: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._member = member
        self._backoff = backoff
        self._stopping = stopping
        self._clock = clock

    def call(self, service: str, write: Callable[[], T]) -> Held[T, M]:
        """``write()`` until it does not raise :class:`SinkUnavailable` (or a stop is requested)."""
        reread: list[M] = []
        delays = self._backoff.delays()
        retries = 0
        held = False
        try:
            while True:
                try:
                    return Held(write(), reread, retries)
                except SinkUnavailable as exc:
                    if self._stopping():
                        raise
                    retries += 1
                    delay = next(delays)
                    log.warning("%s unavailable (%s); retrying in %.1f s", service, exc, delay)
                    if not held:
                        self._member.pause_all()
                        held = True
                    reread.extend(self._wait(delay))
        finally:
            if held:
                self._member.resume_all()

    def _wait(self, seconds: float) -> list[M]:
        """Poll while held for ``seconds`` (less if a stop is requested); what was delivered, rewound."""
        delivered: list[M] = []
        deadline = self._clock() + seconds
        while (left := deadline - self._clock()) > 0 and not self._stopping():
            for message in self._member.poll_held(min(self._backoff.poll_s, left)):
                self._member.rewind(message)
                delivered.append(message)
        return delivered
