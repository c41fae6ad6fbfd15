"""Fault injection: what a real event stream does to a consumer that the happy path doesn't.

Three kinds of trouble, each off by default and each with its own rate:

* duplicates: the same message (key and value bytes identical) sent again a moment
  later, as a producer retry after a lost acknowledgement does;
* late events: a message held back and emitted up to ``max_lateness`` after its
  ``occurred_at`` order (the event itself is unchanged), as a phone that was offline does;
* malformed messages: broken bytes of many kinds (see ``MALFORMED_KINDS``), inserted
  next to the valid events, never replacing them.

Faults draw from their own random stream (seeded from the simulation seed), so the
valid events of a run are the same whatever the fault settings. Each message says what
it is in ``SimulatedMessage.kind`` (and, for malformed ones, the rejection the decoder
must give in ``SimulatedMessage.expected``); the bytes themselves carry no marker.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import random
from dataclasses import dataclass
from typing import Final

from pipeline.simulation.malformed import MALFORMED_KINDS, malformed_message
from pipeline.simulation.record import DUPLICATE, LATE, VALID, SimulatedMessage


@dataclass(frozen=True)
class FaultConfig:
    """Rates are per valid event: 0.01 means about one in a hundred.

    ``malformed_rate`` adds that many malformed messages per valid event on average
    (chosen uniformly among ``malformed_kinds``); the valid events are all still sent.
    """

    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    max_lateness: _dt.timedelta = _dt.timedelta(minutes=10)
    malformed_rate: float = 0.0
    malformed_kinds: tuple[str, ...] = ()
    """Empty means all of ``MALFORMED_KINDS``."""
    max_duplicate_delay: _dt.timedelta = _dt.timedelta(seconds=5)

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "late_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.max_lateness <= _dt.timedelta(0):
            raise ValueError("max_lateness must be positive")
        unknown = set(self.malformed_kinds) - set(MALFORMED_KINDS)
        if unknown:
            raise ValueError(f"unknown malformed kinds {sorted(unknown)}")


NO_FAULTS: Final = FaultConfig()


class FaultInjector:
    """Turns the time-ordered stream of valid events into the stream actually sent.

    ``push`` takes each valid event in time order and returns the messages to send now:
    held messages that have come due (late ones and duplicates), then the event unless
    it is held back as late, then any malformed message derived from it. ``release``
    sends what is due by a given time when no event arrives (live mode); ``flush`` sends
    everything still held at the end of a backfill.
    """

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self._rng = random.Random(f"faults:{seed}")
        self._held: list[tuple[int, int, SimulatedMessage]] = []
        self._seq = 0
        self._kinds = config.malformed_kinds or MALFORMED_KINDS
        self._max_late_ms = int(config.max_lateness.total_seconds() * 1000)
        self._max_dup_ms = int(config.max_duplicate_delay.total_seconds() * 1000)

    def _hold(self, due_ms: int, message: SimulatedMessage) -> None:
        self._seq += 1
        heapq.heappush(self._held, (due_ms, self._seq, message))

    def release(self, now_ms: int) -> list[SimulatedMessage]:
        """Held messages due at or before ``now_ms``, in due order."""
        out: list[SimulatedMessage] = []
        held = self._held
        while held and held[0][0] <= now_ms:
            due_ms, _, message = heapq.heappop(held)
            out.append(message)
            self._maybe_duplicate(due_ms, message, out)
        return out

    def _maybe_duplicate(self, now_ms: int, message: SimulatedMessage, out: list[SimulatedMessage]) -> None:
        if message.kind != DUPLICATE and self._rng.random() < self.config.duplicate_rate:
            delay = self._rng.randrange(0, self._max_dup_ms + 1)
            copy = SimulatedMessage(message.key, message.value, DUPLICATE)
            if delay == 0:
                out.append(copy)
            else:
                self._hold(now_ms + delay, copy)

    def push(self, at_ms: int, key: bytes, value: bytes) -> list[SimulatedMessage]:
        """SimulatedMessages to send when the valid event ``value`` (time ``at_ms``) comes up."""
        rng = self._rng
        cfg = self.config
        held = self._held
        out = self.release(at_ms) if held and held[0][0] <= at_ms else []
        if cfg.late_rate and rng.random() < cfg.late_rate:
            lateness = rng.randrange(1_000, max(1_001, self._max_late_ms + 1))
            self._hold(at_ms + lateness, SimulatedMessage(key, value, LATE))
        else:
            message = SimulatedMessage(key, value, VALID)
            out.append(message)
            if cfg.duplicate_rate:
                self._maybe_duplicate(at_ms, message, out)
        if cfg.malformed_rate and rng.random() < cfg.malformed_rate:
            kind = self._kinds[rng.randrange(len(self._kinds))]
            out.append(malformed_message(kind, rng, key, value))
        return out

    def flush(self) -> list[SimulatedMessage]:
        """Everything still held, in due order (end of a finite stream)."""
        out: list[SimulatedMessage] = []
        while self._held:
            out.extend(self.release(self._held[0][0]))
        return out
