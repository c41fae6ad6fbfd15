"""Which offsets may be committed: the consumer's bookkeeping, with no Kafka client in it.

A committed offset tells the group where to start reading a partition again, so it may
only move past data that is written everywhere (both sinks, and the dead letters
delivered), only while this member owns the partition, and never backwards.

Batches are numbered as they are read, and several may be in flight at once (one batch
indexed in OpenSearch while the next is stored in PostgreSQL, say), finishing in any
order. A partition's offset advances over its batches strictly in the order they were
read: a finished batch waits for every unfinished batch before it that read the same
partition.

Losing a partition (revoked or lost) forgets everything about it, including what batches
still in flight read from it: the next owner starts from the committed offset, and if the
partition comes back later it starts from whatever the group committed meanwhile, which
an offset remembered from before could move backwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class _Batch:
    number: int
    partitions: tuple[int, ...]
    written: bool = False


@dataclass(slots=True)
class _Partition:
    """One owned partition: its batches in reading order, what is written up to, what is committed."""

    queue: deque[tuple[_Batch, int]] = field(default_factory=deque)
    written: int = -1
    """One past the last offset of the longest run of written batches (or -1)."""
    committed: int = -1
    """The offset this member last committed for it since it was assigned (or -1)."""


class OffsetLedger:
    """What was read and written per partition, and so what may be committed now."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._open: dict[int, _Batch] = {}
        self._last_number = 0

    # --- ownership ----------------------------------------------------------------------
    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._partitions)

    def assign(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._partitions.setdefault(p, _Partition())

    def revoke(self, partitions: Iterable[int]) -> dict[int, int]:
        """Forget these partitions; returns what may still be committed for them (the last chance)."""
        gone = set(partitions)
        last = self.committable(only=gone)
        self.lose(gone)
        return last

    def lose(self, partitions: Iterable[int]) -> None:
        """Forget these partitions: another member may own them already, nothing is committed for them."""
        for p in partitions:
            self._partitions.pop(p, None)

    # --- batches ------------------------------------------------------------------------
    def read(self, next_offsets: Mapping[int, int]) -> int:
        """Record a batch just read (partition -> one past its highest offset); returns its number.

        Partitions not owned now are left out: their data belongs to another member.
        """
        self._last_number += 1
        owned = {p: o for p, o in next_offsets.items() if p in self._partitions}
        batch = _Batch(self._last_number, tuple(owned))
        self._open[batch.number] = batch
        for p, offset in owned.items():
            self._partitions[p].queue.append((batch, offset))
        return batch.number

    def written(self, number: int) -> None:
        """Batch ``number`` is written everywhere; its offsets may be committed once every batch before it is."""
        batch = self._open.pop(number, None)
        if batch is None:
            raise ValueError(f"batch {number} was not read, or is written already")
        batch.written = True
        for p in batch.partitions:
            part = self._partitions.get(p)
            if part is None:
                continue
            while part.queue and part.queue[0][0].written:
                _, offset = part.queue.popleft()
                part.written = max(part.written, offset)

    @property
    def in_flight(self) -> int:
        """Batches read and not yet written."""
        return len(self._open)

    # --- committing ---------------------------------------------------------------------
    def committable(self, only: Collection[int] | None = None) -> dict[int, int]:
        """``partition -> offset`` that may be committed now and is ahead of what was committed."""
        return {
            p: part.written
            for p, part in self._partitions.items()
            if part.written > part.committed and (only is None or p in only)
        }

    def committed(self, offsets: Mapping[int, int]) -> None:
        """The group has stored these offsets (a commit succeeded): they need not be committed again."""
        for p, offset in offsets.items():
            part = self._partitions.get(p)
            if part is not None:
                part.committed = max(part.committed, offset)

    @property
    def pending(self) -> bool:
        """Is anything written whose commit has not succeeded yet?"""
        return any(part.written > part.committed for part in self._partitions.values())
