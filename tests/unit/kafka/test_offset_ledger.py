"""The offset ledger on its own: what may be committed, for which partitions, in which order."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from pipeline.kafka.ledger import OffsetLedger


def ledger(*owned: int) -> OffsetLedger:
    book = OffsetLedger()
    book.assign(owned)
    return book


def test_a_written_batch_is_committable_until_its_commit_succeeds() -> None:
    book = ledger(0, 1)
    n = book.read({0: 10, 1: 4})
    assert book.committable() == {} and not book.pending
    book.written(n)
    assert book.committable() == {0: 10, 1: 4} and book.pending
    # the commit failed: nothing recorded, the same offsets are offered again
    assert book.committable() == {0: 10, 1: 4}
    book.committed({0: 10, 1: 4})
    assert book.committable() == {} and not book.pending


def test_batches_in_flight_commit_in_reading_order_per_partition() -> None:
    book = ledger(0, 1)
    first = book.read({0: 10})
    second = book.read({0: 20, 1: 5})
    assert book.in_flight == 2
    book.written(second)
    # partition 0 waits for the first batch; partition 1 has no earlier batch to wait for
    assert book.committable() == {1: 5}
    book.written(first)
    assert book.committable() == {0: 20, 1: 5} and book.in_flight == 0


def test_a_later_batch_does_not_overtake_an_unwritten_earlier_one_on_any_shared_partition() -> None:
    book = ledger(0, 1, 2)
    batches = [book.read({p: 10 * (i + 1) for p in (0, 1, 2)}) for i in range(4)]
    for n in reversed(batches[1:]):
        book.written(n)
        assert book.committable() == {}
    book.written(batches[0])
    assert book.committable() == {0: 40, 1: 40, 2: 40}


def test_partitions_not_owned_when_read_are_never_committable() -> None:
    book = ledger(0)
    n = book.read({0: 3, 7: 9})
    book.written(n)
    assert book.committable() == {0: 3}


def test_revoke_offers_its_last_commit_then_forgets() -> None:
    book = ledger(0, 1)
    book.written(book.read({0: 5, 1: 6}))
    assert book.revoke([1]) == {1: 6}
    assert book.owned == {0} and book.committable() == {0: 5}
    book.committed({1: 6})  # the revoke callback's commit went through: nothing to record
    assert book.committable() == {0: 5}


def test_lost_partitions_are_forgotten_without_a_commit() -> None:
    book = ledger(0, 1)
    book.written(book.read({0: 5, 1: 6}))
    book.lose([0])
    assert book.committable() == {1: 6}


def test_a_batch_read_before_a_partition_left_commits_nothing_for_it_even_once_it_is_back() -> None:
    book = ledger(0, 1)
    n = book.read({0: 50, 1: 5})
    book.revoke([0])
    book.assign([0])  # back again, starting from whatever the group committed meanwhile
    later = book.read({0: 70})
    book.written(n)
    assert book.committable() == {1: 5}
    book.written(later)
    assert book.committable() == {0: 70, 1: 5}


def test_offsets_never_go_backwards() -> None:
    book = ledger(0)
    book.written(book.read({0: 10}))
    book.committed({0: 10})
    book.written(book.read({0: 8}))  # a rewound partition read again
    assert book.committable() == {} and not book.pending
    book.committed({0: 4})  # an older confirmation arriving late changes nothing
    book.written(book.read({0: 12}))
    assert book.committable() == {0: 12}


def test_a_batch_is_written_once() -> None:
    book = ledger(0)
    n = book.read({0: 1})
    book.written(n)
    with pytest.raises(ValueError, match="not read, or is written already"):
        book.written(n)
    with pytest.raises(ValueError):
        book.written(n + 1)


# --- the invariants, over any sequence of reads, writes, commits and rebalances -------------

PARTITIONS = st.integers(0, 2)
READ = st.dictionaries(st.integers(0, 3), st.integers(1, 15), min_size=1, max_size=4)
"""Batches may hold partition 3, which is never assigned."""
SINKS = ("postgres", "opensearch")


class LedgerMachine(RuleBasedStateMachine):
    """The ledger against a model of the partitions' data and the group's committed offsets.

    Reads cover real offset ranges; each sink finishes each batch on its own, and the
    ledger hears of a batch once both have. The checks do not ask how the ledger decides:
    every offset it offers must sit on data read in the current ownership and written by
    both sinks, for a partition owned now, never behind the group's committed offset, and
    once everything is written one successful commit catches every partition up.
    """

    batches = Bundle("batches")

    def __init__(self) -> None:
        super().__init__()
        self.book = OffsetLedger()
        self.group: dict[int, int] = {}
        """The group's committed offset per partition (the broker's truth)."""
        self.owned: set[int] = set()
        self.epoch: dict[int, int] = {}
        self.position: dict[int, int] = {}
        self.start: dict[int, int] = {}
        self.read_max: dict[int, int] = {}
        self.ranges: dict[int, list[tuple[int, int, int, int]]] = {}
        """Per partition: (epoch, first offset, end offset, batch number) of every read."""
        self.done: dict[int, set[str]] = {}

    # --- what happens to a member ---------------------------------------------------------
    @rule(p=PARTITIONS)
    def assign(self, p: int) -> None:
        if p in self.owned:
            return
        self.owned.add(p)
        self.epoch[p] = self.epoch.get(p, 0) + 1
        self.start[p] = self.position[p] = self.read_max[p] = self.group.get(p, 0)
        self.book.assign([p])

    @rule(p=PARTITIONS, succeeds=st.booleans())
    def revoke(self, p: int, succeeds: bool) -> None:
        if p not in self.owned:
            return
        last = self.book.revoke([p])
        self.check_offers(last)
        assert set(last) <= {p}
        if succeeds:
            self.store(last)
        self.owned.discard(p)

    @rule(p=PARTITIONS)
    def lose(self, p: int) -> None:
        self.owned.discard(p)
        self.book.lose([p])

    @rule(p=PARTITIONS, ahead=st.integers(1, 20))
    def another_member_commits(self, p: int, ahead: int) -> None:
        if p not in self.owned:
            self.group[p] = self.group.get(p, 0) + ahead

    @rule(p=PARTITIONS, back=st.integers(0, 20))
    def rewind(self, p: int, back: int) -> None:
        if p in self.owned:
            self.position[p] = max(self.start[p], self.position[p] - back)

    # --- batches --------------------------------------------------------------------------
    @rule(target=batches, sizes=READ)
    def read(self, sizes: dict[int, int]) -> int:
        ends: dict[int, int] = {}
        reads = []
        for p, size in sizes.items():
            first = self.position.get(p, 0) if p in self.owned else 1000
            ends[p] = first + size
            if p in self.owned:
                self.position[p] = ends[p]
                self.read_max[p] = max(self.read_max[p], ends[p])
                reads.append((p, first))
        number = self.book.read(ends)
        for p, first in reads:
            self.ranges.setdefault(p, []).append((self.epoch[p], first, ends[p], number))
        self.done[number] = set()
        return number

    @rule(number=batches, sinks=st.sets(st.sampled_from(SINKS), min_size=1))
    def sinks_finish(self, number: int, sinks: set[str]) -> None:
        finished = self.done[number]
        if len(finished) == len(SINKS):
            return
        finished.update(sinks)
        if len(finished) == len(SINKS):
            self.book.written(number)

    @rule(succeeds=st.booleans())
    def commit(self, succeeds: bool) -> None:
        offers = self.book.committable()
        self.check_offers(offers)
        if succeeds:
            self.store(offers)
            self.book.committed(offers)

    @rule()
    def everything_written_then_committed(self) -> None:
        for n, finished in self.done.items():
            if len(finished) < len(SINKS):
                finished.update(SINKS)
                self.book.written(n)
        offers = self.book.committable()
        self.check_offers(offers)
        self.store(offers)
        self.book.committed(offers)
        assert not self.book.pending
        for p in self.owned:
            # every written offset of an owned partition is committed: nobody else would re-read it
            assert self.group.get(p, 0) == self.read_max[p], p

    # --- the checks -----------------------------------------------------------------------
    def check_offers(self, offers: dict[int, int]) -> None:
        for p, offset in offers.items():
            assert p in self.owned, f"offered partition {p}, not owned"
            assert offset > self.group.get(p, 0), f"partition {p}: {offset} is not ahead of the group's offset"
            written = set()
            for epoch, first, end, number in self.ranges.get(p, []):
                if epoch == self.epoch[p] and self.done[number] == set(SINKS):
                    written.update(range(first, end))
            missing = set(range(self.start[p], offset)) - written
            assert not missing, f"partition {p}: committing {offset} but {sorted(missing)[:5]} not in both sinks"

    def store(self, offsets: dict[int, int]) -> None:
        for p, offset in offsets.items():
            assert offset >= self.group.get(p, 0), "the group's offset went backwards"
            self.group[p] = offset

    @invariant()
    def owns_what_the_group_gave_it(self) -> None:
        assert self.book.owned == self.owned

    @invariant()
    def offers_only_safe_offsets(self) -> None:
        self.check_offers(self.book.committable())
        assert self.book.pending == bool(self.book.committable())


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
test_ledger_invariants = LedgerMachine.TestCase
