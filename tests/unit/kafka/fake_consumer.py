"""A scripted stand-in for ``confluent_kafka.Consumer``: the broker's side of one group member.

Each ``consume`` call plays the next step of a script, the way librdkafka does: rebalance
callbacks first (inside the call), then the messages. Time is a counter that a ``consume``
advances by its timeout, so waits are checked without sleeping. Commits are recorded as
the group would store them, and refused for a partition this member does not own (as
the broker refuses them from a member that lost it); like librdkafka's asynchronous
commits, their answers reach the commit callback during the next ``consume``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition

from pipeline.config.secret import Secret
from pipeline.config.settings import KafkaSettings
from pipeline.kafka.consumer import GroupConsumer, GroupProtocol

TOPIC = "events"
KAFKA = KafkaSettings(
    bootstrap="127.0.0.1:9",
    ca_pem="",
    certs={"consumer": ("", Secret(""))},  # type: ignore[dict-item]
    events_topic=TOPIC,
    dead_letter_topic="d",
    consumer_group="g",
)


def message(partition: int, offset: int, topic: str = TOPIC) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, value=f"{partition}:{offset}".encode())


def messages(partition: int, offsets: Iterable[int]) -> list[Message]:
    return [message(partition, o) for o in offsets]


def error(code: int, text: str = "", *, fatal: bool = False, retriable: bool = False) -> Message:
    return Message(topic=TOPIC, error=KafkaError(code, text, fatal=fatal, retriable=retriable))


@dataclass
class Step:
    """What one ``consume`` call does: rebalance callbacks in this order, then hand out ``deliver``."""

    assign: list[int] = field(default_factory=list)
    revoke: list[int] = field(default_factory=list)
    lose: list[int] = field(default_factory=list)
    deliver: list[Message] = field(default_factory=list)
    then: Callable[[], None] | None = None
    """Run after the callbacks (a stop request arriving during the poll, say)."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeConsumer:
    def __init__(self, *, clock: Clock | None = None) -> None:
        self.config: dict[str, Any] = {}
        self.clock = clock or Clock()
        self.script: list[Step] = []
        self.assigned: set[int] = set()
        self.paused: set[int] = set()
        self.seeks: list[tuple[int, int]] = []
        self.group_offsets: dict[int, int] = {}
        """What the group has committed (partition -> next offset): the broker's truth."""
        self.requests: list[dict[int, int]] = []
        """Every commit asked for, refused or not."""
        self.commits: list[dict[int, int]] = []
        """The commits the group stored."""
        self.failing_commits = 0
        """Refuse the next N commits as a coordinator in the middle of a rebalance would."""
        self.unanswered_commits = 0
        """Never answer the next N commits (a request lost with the coordinator)."""
        self._answers: list[tuple[KafkaError | None, list[TopicPartition]]] = []
        self.timeouts: list[float] = []
        self.closed = False
        self._callbacks: dict[str, Callable[[Any, list[TopicPartition]], None]] = {}

    def play(self, *steps: Step) -> None:
        self.script.extend(steps)

    # --- the confluent_kafka.Consumer surface the pipeline uses -----------------------
    def subscribe(self, topics: list[str], **callbacks: Callable[[Any, list[TopicPartition]], None]) -> None:
        assert topics == [TOPIC]
        self._callbacks = callbacks

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.timeouts.append(timeout)
        answers, self._answers = self._answers, []
        for err, partitions in answers:
            self.config["on_commit"](err, partitions)
        if not self.script:
            self.clock.now += timeout
            return []
        step = self.script.pop(0)
        for name, partitions in (("on_lost", step.lose), ("on_revoke", step.revoke), ("on_assign", step.assign)):
            if partitions:
                if name == "on_assign":
                    self.assigned.update(partitions)
                self._callbacks[name](self, [TopicPartition(TOPIC, p) for p in partitions])
                if name != "on_assign":
                    self.assigned.difference_update(partitions)
                    self.paused.difference_update(partitions)
        if step.then is not None:
            step.then()
        if not step.deliver:
            self.clock.now += timeout
        assert len(step.deliver) <= num_messages
        return list(step.deliver)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in sorted(self.assigned)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update(tp.partition for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update(tp.partition for tp in partitions)

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.partition, partition.offset))

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        """Store the commit as the group would; its answer reaches ``on_commit`` in the next ``consume``."""
        assert asynchronous, "a synchronous commit can block inside the client for good"
        asked = {tp.partition: tp.offset for tp in offsets}
        self.requests.append(asked)
        if self.unanswered_commits:
            self.unanswered_commits -= 1
            return
        if self.failing_commits:
            self.failing_commits -= 1
            self._answers.append((KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalance in progress"), offsets))
            return
        stray = set(asked) - self.assigned
        if stray:
            self._answers.append(
                (KafkaError(KafkaError.UNKNOWN_MEMBER_ID, f"not the owner of {sorted(stray)}"), offsets)
            )
            return
        self.commits.append(asked)
        self.group_offsets.update(asked)
        self._answers.append((None, [TopicPartition(TOPIC, p, o) for p, o in asked.items()]))

    def close(self) -> None:
        self.closed = True


def member(*fakes: FakeConsumer, protocol: GroupProtocol = "auto") -> GroupConsumer:
    """A group member on these fakes: the first is its client, the next one is used if it rejoins."""
    clients = list(fakes)

    def connect(config: dict[str, Any]) -> FakeConsumer:
        client = clients.pop(0)
        client.config = config
        return client

    return GroupConsumer(
        KAFKA,
        topic=TOPIC,
        group="g",
        protocol=protocol,
        client=connect,  # type: ignore[arg-type]
        clock=clients[0].clock,
    )
