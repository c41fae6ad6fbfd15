"""The group member against a scripted client: rebalances, commits that fail, the protocol fallback."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.kafka.consumer import COMMIT_RESEND_S, GroupConsumer
from tests.unit.kafka.fake_consumer import FakeConsumer, Step, error, member, messages


def joined(*partitions: int) -> tuple[FakeConsumer, GroupConsumer]:
    fake = FakeConsumer()
    consumer = member(fake)
    fake.play(Step(assign=list(partitions)))
    assert consumer.poll_batch(10, 0.1) == []
    return fake, consumer


def one_batch_read(read: Mapping[int, int] | None = None) -> tuple[FakeConsumer, GroupConsumer, int]:
    """A member owning the partitions of ``read`` that has read, in one batch, the first ``read[p]``
    offsets of each partition ``p``; by default 0-3 of partition 0 and 0-1 of partition 1."""
    read = read or {0: 4, 1: 2}
    fake = FakeConsumer()
    consumer = member(fake)
    fake.play(Step(assign=list(read), deliver=[m for p, count in read.items() for m in messages(p, range(count))]))
    return fake, consumer, consumer.begin_batch(consumer.poll_batch(100, 0.1))


def settled(consumer: GroupConsumer) -> bool:
    """Serve the commit answers (a poll) and say whether anything is left to commit."""
    assert consumer.poll_batch(100, 0.1) == []
    return consumer.retry_pending()


def test_a_written_batch_is_committed_for_what_it_read_and_counts_once_answered() -> None:
    fake, consumer, n = one_batch_read({0: 5, 1: 3})
    assert fake.requests == []  # read is not written
    assert not consumer.commit_batch(n)  # sent, not answered yet
    assert fake.commits == [{0: 5, 1: 3}]
    assert settled(consumer)
    assert fake.requests == [{0: 5, 1: 3}]


def test_a_failed_commit_is_kept_and_retried_until_it_succeeds() -> None:
    fake, consumer, n = one_batch_read({0: 4})
    fake.failing_commits = 2
    assert not consumer.commit_batch(n)
    assert not settled(consumer)  # refused; sent again
    assert not settled(consumer)  # accepted, answered at the next poll
    assert settled(consumer)
    assert fake.requests == [{0: 4}] * 3 and fake.commits == [{0: 4}]
    assert consumer.retry_pending() and len(fake.requests) == 3  # nothing left to commit


def test_an_unanswered_commit_is_sent_again_after_a_while_not_at_every_poll() -> None:
    fake, consumer, n = one_batch_read({0: 4})
    fake.unanswered_commits = 1
    assert not consumer.commit_batch(n)
    polls = 0
    while len(fake.requests) == 1:
        assert not settled(consumer)
        polls += 1
    assert COMMIT_RESEND_S / 0.1 <= polls <= COMMIT_RESEND_S / 0.1 + 1  # each poll advances the clock 0.1 s
    assert settled(consumer) and fake.commits == [{0: 4}]


def test_a_revoke_commits_what_was_written_for_those_partitions_first() -> None:
    fake, consumer, n = one_batch_read()
    fake.failing_commits = 1
    assert not consumer.commit_batch(n)
    fake.play(Step(revoke=[0]))
    consumer.poll_batch(100, 0.1)  # the refusal arrives, then the revoke
    assert fake.commits == [{0: 4}]  # the last chance, inside the revoke callback
    assert not settled(consumer)
    assert fake.commits == [{0: 4}, {1: 2}]
    assert settled(consumer)


def test_a_partition_revoked_mid_batch_is_not_committed_and_nothing_stays_pending() -> None:
    fake, consumer, n = one_batch_read()
    fake.play(Step(revoke=[1]))
    consumer.poll_batch(100, 0.1)  # a rebalance served while the batch is being written
    assert fake.requests == []  # nothing of the batch was written when partition 1 left
    assert not consumer.commit_batch(n)
    assert fake.requests == [{0: 4}]
    assert settled(consumer)


def test_lost_partitions_are_never_committed() -> None:
    fake, consumer, n = one_batch_read()
    fake.failing_commits = 1
    assert not consumer.commit_batch(n)
    fake.play(Step(lose=[0, 1], assign=[1]))
    consumer.poll_batch(100, 0.1)
    assert consumer.retry_pending()
    assert fake.requests == [{0: 4, 1: 2}]  # the failed one only: the group moved on without us


def test_a_partition_that_comes_back_starts_clean() -> None:
    fake, consumer, before = one_batch_read({0: 10})
    # revoked before the batch was written; another member commits 30; it comes back
    fake.play(Step(revoke=[0]), Step(assign=[0], deliver=messages(0, range(30, 35))))
    consumer.poll_batch(100, 0.1)
    after = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    assert consumer.commit_batch(before)
    assert fake.requests == []  # offset 10 would move the group back from 30
    assert not consumer.commit_batch(after)
    assert settled(consumer) and fake.commits == [{0: 35}]


def test_batches_in_flight_are_committed_in_reading_order() -> None:
    fake = FakeConsumer()
    consumer = member(fake)
    fake.play(Step(assign=[0], deliver=messages(0, range(3))), Step(deliver=messages(0, range(3, 7))))
    first = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    second = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    assert consumer.commit_batch(second)
    assert fake.requests == []
    assert not consumer.commit_batch(first)
    assert settled(consumer) and fake.commits == [{0: 7}]


def test_close_waits_a_bounded_time_for_the_last_commit_then_leaves() -> None:
    fake, consumer, n = one_batch_read()
    consumer.commit_batch(n)
    consumer.close()
    assert fake.closed and fake.commits == [{0: 4, 1: 2}] and not consumer.ledger.pending

    fake, consumer, n = one_batch_read()
    fake.unanswered_commits = 10**6
    consumer.commit_batch(n)
    start = fake.clock.now
    consumer.close(flush_s=3.0)
    assert fake.closed and consumer.ledger.pending and fake.clock.now - start == pytest.approx(3.0)


def test_poll_batch_drops_partition_ends_raises_fatal_errors_and_logs_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, consumer = joined(0)
    transient = error(KafkaError._TRANSPORT, "broker down", retriable=True)
    fake.play(Step(deliver=[error(KafkaError._PARTITION_EOF), *messages(0, [0]), transient]))
    with caplog.at_level(logging.WARNING):
        assert [m.offset() for m in consumer.poll_batch(100, 0.1)] == [0]  # type: ignore[attr-defined]
    assert "kafka consumer:" in caplog.text
    fake.play(Step(deliver=[error(KafkaError._FATAL, "fenced", fatal=True)]))
    with pytest.raises(KafkaException, match="fenced"):
        consumer.poll_batch(100, 0.1)


HEARTBEAT_UNSUPPORTED = "Fatal error: Broker: API version not supported: ConsumerGroupHeartbeat"


def test_auto_rejoins_with_the_classic_protocol_when_the_broker_has_no_kip_848() -> None:
    first, second = FakeConsumer(), FakeConsumer()
    consumer = member(first, second)
    assert first.config["group.protocol"] == "consumer"
    first.play(Step(deliver=[error(KafkaError._FATAL, HEARTBEAT_UNSUPPORTED, fatal=True)]))
    assert consumer.poll_batch(100, 0.1) == []
    assert first.closed and consumer.protocol == "classic"
    assert second.config["group.protocol"] == "classic"
    second.play(Step(assign=[0], deliver=messages(0, range(2))))
    n = consumer.begin_batch(consumer.poll_batch(100, 0.1))
    assert not consumer.commit_batch(n) and second.commits == [{0: 2}]


def test_asking_for_kip_848_from_a_broker_without_it_is_a_fatal_error() -> None:
    fake = FakeConsumer()
    consumer = member(fake, protocol="consumer")
    fake.play(Step(deliver=[error(KafkaError._FATAL, HEARTBEAT_UNSUPPORTED, fatal=True)]))
    with pytest.raises(KafkaException, match="ConsumerGroupHeartbeat"):
        consumer.poll_batch(100, 0.1)
