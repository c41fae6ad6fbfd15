"""The engine's calendar: items keyed by the time of their next event, popped in time order."""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")


class Agenda(Generic[T]):
    """Items (visits) keyed by the time of their next event; pops in (time, insertion) order.

    A calendar rather than a plain heap of visits: visits due in the same millisecond
    share one slot, and the heap holds only distinct times. At high rates (tens of events
    per ms) most pushes and pops become list appends and index bumps; at low rates it
    behaves like a heap. A slot holds the visit itself until a second one shares the
    millisecond (then a list): fewer objects for the garbage collector to walk, which is
    why an item must not itself be a list. Insertion order within a millisecond keeps
    the output deterministic. Like any calendar it only moves forward: an item may not
    be pushed at a time earlier than the last one popped.
    """

    __slots__ = ("_times", "_slots", "_i", "first")

    def __init__(self) -> None:
        self._times: list[int] = []
        self._slots: dict[int, T | list[T]] = {}
        self._i = 0
        self.first: int | None = None
        """The earliest time with an item due, or None when empty."""

    def push(self, at_ms: int, item: T) -> None:
        slot = self._slots.get(at_ms)
        if slot is None:
            self._slots[at_ms] = item
            heapq.heappush(self._times, at_ms)
            self.first = self._times[0]
        elif type(slot) is list:
            slot.append(item)
        else:
            self._slots[at_ms] = [slot, item]  # type: ignore[list-item]

    def pop(self) -> tuple[int, T]:
        times = self._times
        at_ms = times[0]
        slot = self._slots[at_ms]
        if type(slot) is list:
            item: T = slot[self._i]
            self._i += 1
            if self._i < len(slot):
                return at_ms, item
            self._i = 0
        else:
            item = slot  # type: ignore[assignment]
        del self._slots[at_ms]
        heapq.heappop(times)
        self.first = times[0] if times else None
        return at_ms, item

    def __len__(self) -> int:
        return sum(len(s) if type(s) is list else 1 for s in self._slots.values()) - self._i
