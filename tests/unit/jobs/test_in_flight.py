"""The window of batches written at once: landing order, the bound, the insert turns, failures."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.jobs.in_flight import Turn, Window


class Recorder:
    """What the writes did, in the order they did it (appends are atomic under the GIL, and guarded anyway)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inserts: list[int] = []
        self.running = 0
        self.most_running = 0

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def insert(self, number: int) -> None:
        with self.lock:
            self.inserts.append(number)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=4),
    durations=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=3)), min_size=1, max_size=15
    ),
)
def test_batches_land_in_launch_order_insert_in_launch_order_and_never_exceed_the_window(
    size: int, durations: list[tuple[int, int]]
) -> None:
    """Writes of random lengths (before and after their insert): whatever order they end in, the
    window lands them in launch order, their inserts happen in launch order, and no more than
    ``size`` run at once."""
    record = Recorder()

    def write(writer: str, turn: Turn, payload: tuple[int, int, int]) -> None:
        number, before_ms, after_ms = payload
        record.enter()
        try:
            time.sleep(before_ms / 1000)  # work before the insert (begin the transaction)
            turn.wait()
            record.insert(number)
            turn.done()
            time.sleep(after_ms / 1000)  # work after it (OpenSearch, merge, commit)
        finally:
            record.leave()

    window: Window[str, tuple[int, int, int]] = Window([f"w{i}" for i in range(size)])
    landed: list[int] = []
    try:
        for number, (before_ms, after_ms) in enumerate(durations, start=1):
            if window.full:
                flight = window.land(block=True)
                assert flight is not None
                landed.append(flight.payload[0])
                window.release(flight)
            window.launch((number, before_ms, after_ms), write)
        while (flight := window.land(block=True)) is not None:
            landed.append(flight.payload[0])
            window.release(flight)
    finally:
        window.close()
    expected = list(range(1, len(durations) + 1))
    assert landed == expected
    assert record.inserts == expected
    assert record.most_running <= size


def test_a_later_batch_that_ends_first_waits_to_be_landed_after_the_earlier_one() -> None:
    release_first = threading.Event()

    def write(writer: str, turn: Turn, number: int) -> None:
        turn.done()
        if number == 1:
            release_first.wait()

    window: Window[str, int] = Window(["a", "b"])
    try:
        window.launch(1, write)
        second = window.launch(2, write)
        second.future.result(timeout=10)  # batch 2 has ended...
        assert window.land(block=False) is None  # ...but batch 1 has not: nothing lands
        release_first.set()
        first = window.land(block=True)
        assert first is not None and first.payload == 1
        window.release(first)
        again = window.land(block=False)
        assert again is not None and again.payload == 2
    finally:
        release_first.set()
        window.close()


def test_a_full_window_refuses_another_batch_until_a_landed_one_is_released() -> None:
    window: Window[str, int] = Window(["only"])
    window.launch(1, lambda writer, turn, n: None)
    assert window.full
    with pytest.raises(RuntimeError, match="busy"):
        window.launch(2, lambda writer, turn, n: None)
    flight = window.land(block=True)
    assert flight is not None and window.full  # landed, but the caller may still retry on its writer
    window.release(flight)
    assert not window.full
    window.close()


def test_with_one_writer_the_write_runs_on_the_calling_thread() -> None:
    threads: list[threading.Thread] = []
    window: Window[str, int] = Window(["only"])
    window.launch(1, lambda writer, turn, n: threads.append(threading.current_thread()))
    assert threads == [threading.current_thread()]
    window.close()


def test_a_failed_write_lands_with_its_error_and_does_not_hold_up_the_next_insert() -> None:
    inserted: list[int] = []

    def write(writer: str, turn: Turn, number: int) -> None:
        if number == 1:
            raise ConnectionError("the sink is down")
        turn.wait()
        inserted.append(number)

    window: Window[str, int] = Window(["a", "b"])
    first = window.launch(1, write)
    second = window.launch(2, write)
    try:
        second.future.result(timeout=10)  # its insert did not wait forever for the failed batch's turn
        assert inserted == [2]
        landed = window.land(block=True)
        assert landed is first and isinstance(first.future.exception(), ConnectionError)
        window.release(first)
        assert window.land(block=True) is second
    finally:
        first.turn.done()  # if the turn was never marked, let the stuck writer end so the pool can close
        window.close()


def test_a_turn_waits_for_the_previous_one_and_only_for_it() -> None:
    first = Turn(None)
    second = Turn(first)
    waiter = threading.Thread(target=second.wait)
    waiter.start()
    waiter.join(timeout=0.2)  # a bounded look: it must still be waiting
    assert waiter.is_alive()
    first.done()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert not second.is_done  # waiting for the previous turn does not end this one
    Turn(None).wait()  # the first batch never waits


def test_an_empty_window_lands_nothing_and_a_window_needs_a_writer() -> None:
    window: Window[str, int] = Window(["a", "b"])
    assert window.land(block=True) is None and window.empty and len(window) == 0
    window.close()
    with pytest.raises(ValueError, match="at least one writer"):
        Window([])
