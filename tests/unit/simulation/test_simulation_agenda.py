"""The agenda pops in (time, insertion) order, whatever the mix of pushes and pops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.simulation.agenda import Agenda

# A script of operations: a delay to push at (from the last time popped; small, so that
# many items share a millisecond) or None for a pop.
_OPS = st.lists(st.one_of(st.integers(0, 4), st.none()), max_size=80)


@settings(max_examples=300, deadline=None)
@given(_OPS)
def test_pops_follow_time_then_insertion_order(ops: list[int | None]) -> None:
    """Oracle: a plain list of pending (time, sequence) pairs, popped at its minimum."""
    agenda: Agenda[int] = Agenda()
    pending: list[tuple[int, int]] = []
    now = 0
    for seq, delay in enumerate(ops):
        if delay is None:
            if not pending:
                continue
            expected = min(pending)
            pending.remove(expected)
            assert agenda.pop() == expected
            now = expected[0]
        else:
            agenda.push(now + delay, seq)
            pending.append((now + delay, seq))
        assert len(agenda) == len(pending)
        assert agenda.first == (min(pending)[0] if pending else None)
