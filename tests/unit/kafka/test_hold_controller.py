"""Waiting out a sink outage, against a scripted client: paused, alive, what comes back to re-read."""

from __future__ import annotations

import itertools
import logging
import threading

import pytest

from pipeline.errors import IndexingError, SinkUnavailable
from pipeline.kafka.consumer import GroupConsumer
from pipeline.kafka.hold import Backoff, HoldController
from tests.unit.kafka.fake_consumer import FakeConsumer, Step, member, messages

QUICK = Backoff(first_s=0.5, factor=2.0, max_s=4.0, poll_s=0.2)


class Sink:
    """Down for the first ``outages`` writes; records the (fake) time of every attempt and what was paused."""

    def __init__(self, fake: FakeConsumer, outages: int, then: BaseException | None = None) -> None:
        self.fake = fake
        self.outages = outages
        self.then = then
        self.attempts: list[float] = []
        self.paused: list[set[int]] = []

    def write(self) -> str:
        self.attempts.append(self.fake.clock())
        self.paused.append(set(self.fake.paused))
        if len(self.attempts) <= self.outages:
            raise SinkUnavailable("connection refused")
        if self.then is not None:
            raise self.then
        return "stored"


def held_member(*partitions: int) -> tuple[FakeConsumer, GroupConsumer]:
    fake = FakeConsumer()
    consumer = member(fake)
    fake.play(Step(assign=list(partitions)))
    consumer.poll_batch(10, 0.1)
    return fake, consumer


def controller(
    fake: FakeConsumer, consumer: GroupConsumer, stop: threading.Event, backoff: Backoff = QUICK
) -> HoldController[object]:
    return HoldController(consumer, backoff, stopping=stop.is_set, clock=fake.clock)  # type: ignore[arg-type]


def test_the_backoff_doubles_up_to_its_ceiling() -> None:
    assert list(itertools.islice(Backoff().delays(), 9)) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert list(itertools.islice(Backoff(first_s=1, factor=3, max_s=10).delays(), 4)) == [1, 3, 9, 10]


def test_a_sink_that_is_up_costs_no_pause_and_no_poll() -> None:
    fake, consumer = held_member(0, 1)
    polls = len(fake.timeouts)
    outcome = controller(fake, consumer, threading.Event()).call("a sink", lambda: "stored")
    assert (outcome.value, outcome.reread, outcome.retries) == ("stored", [], 0)
    assert len(fake.timeouts) == polls and fake.paused == set()


def test_while_a_sink_is_down_the_member_is_paused_and_keeps_polling_between_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, consumer = held_member(0, 1)
    start = fake.clock()
    sink = Sink(fake, outages=3)
    polls = len(fake.timeouts)
    with caplog.at_level(logging.WARNING):
        outcome = controller(fake, consumer, threading.Event()).call("PostgreSQL", sink.write)
    assert (outcome.value, outcome.retries) == ("stored", 3)
    assert [round(t - start, 6) for t in sink.attempts] == [0, 0.5, 1.5, 3.5]  # waits of 0.5, 1, 2
    assert all(0 < t <= QUICK.poll_s for t in fake.timeouts[polls:])
    assert sink.paused == [set(), {0, 1}, {0, 1}, {0, 1}]
    assert fake.paused == set()  # resumed
    assert "PostgreSQL unavailable (connection refused); retrying in 2.0 s" in caplog.text


def test_messages_delivered_while_held_are_rewound_and_returned_to_be_read_again() -> None:
    fake, consumer = held_member(0)
    late = messages(2, [7, 8])
    # a partition assigned during the outage: paused by the assign callback, yet a poll delivers from it
    fake.play(Step(assign=[2], deliver=late))
    sink = Sink(fake, outages=1)
    outcome = controller(fake, consumer, threading.Event()).call("a sink", sink.write)
    assert outcome.reread == late and outcome.retries == 1
    assert fake.seeks == [(2, 7), (2, 8)]
    assert sink.paused[-1] == {0, 2}
    assert fake.paused == set()


def test_a_partition_assigned_while_held_is_paused_until_the_sink_is_back() -> None:
    fake, consumer = held_member(0)
    fake.play(Step(assign=[3]))
    sink = Sink(fake, outages=1)
    outcome = controller(fake, consumer, threading.Event()).call("a sink", sink.write)
    assert outcome.reread == [] and fake.seeks == []
    assert sink.paused == [set(), {0, 3}]
    assert fake.paused == set()


def test_a_rebalance_while_held_commits_what_was_written_for_the_revoked_partition() -> None:
    fake, consumer = held_member(0, 1)
    fake.play(Step(deliver=messages(0, range(3)) + messages(1, range(2))))
    written = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    fake.failing_commits = 1
    assert not consumer.commit_batch(written)
    fake.play(Step(deliver=messages(0, range(3, 5))))
    in_hand = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    fake.play(Step(revoke=[0]))
    controller(fake, consumer, threading.Event()).call("a sink", Sink(fake, outages=2).write)
    assert fake.commits == [{0: 3}]  # the written batch, in the revoke callback; not the batch in hand
    assert not consumer.commit_batch(in_hand)  # partition 1's written offsets, sent again
    assert fake.commits == [{0: 3}, {1: 2}]


def test_a_stop_request_cuts_the_wait_short_and_raises_if_the_sink_is_still_down() -> None:
    fake, consumer = held_member(0)
    stop = threading.Event()
    fake.play(Step(), Step(then=stop.set))
    sink = Sink(fake, outages=10)
    with pytest.raises(SinkUnavailable):
        controller(fake, consumer, stop, Backoff(first_s=30, poll_s=0.2)).call("a sink", sink.write)
    assert len(sink.attempts) == 2 and sink.attempts[1] - sink.attempts[0] < 1  # not the 30 s wait
    assert fake.paused == set()


def test_a_stop_request_still_finishes_the_batch_if_the_sink_is_back() -> None:
    fake, consumer = held_member(0)
    stop = threading.Event()
    fake.play(Step(then=stop.set))
    outcome = controller(fake, consumer, stop).call("a sink", Sink(fake, outages=1).write)
    assert (outcome.value, outcome.retries) == ("stored", 1)


def test_a_stop_requested_before_the_outage_raises_at_once_without_holding() -> None:
    fake, consumer = held_member(0)
    stop = threading.Event()
    stop.set()
    sink = Sink(fake, outages=1)
    with pytest.raises(SinkUnavailable):
        controller(fake, consumer, stop).call("a sink", sink.write)
    assert len(sink.attempts) == 1 and fake.paused == set() and fake.timeouts == [0.1]


def test_a_failure_that_is_not_an_outage_ends_the_hold_and_propagates() -> None:
    fake, consumer = held_member(0)
    sink = Sink(fake, outages=1, then=IndexingError("mapping refused"))
    with pytest.raises(IndexingError):
        controller(fake, consumer, threading.Event()).call("a sink", sink.write)
    assert fake.paused == set()
