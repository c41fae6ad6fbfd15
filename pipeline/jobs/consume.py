"""``pipeline consume``: Kafka batches in, PostgreSQL and OpenSearch brought up to date, offsets committed.

One batch is one unit of work: decode and validate every message; store the valid events
through ``pipeline.sinks.writer`` (PostgreSQL transaction, the new events indexed in
OpenSearch before its commit, sessions merged, commit); index the session rows; send
every message that cannot be stored (invalid, refused by a sink, or a different copy of an
event already stored) to the dead-letter topic and wait for its delivery; only then commit
the batch's offsets. A crash at any point leaves the batch uncommitted, and every write is
idempotent, so the replay after a restart writes nothing twice and nothing is lost.

``--in-flight K`` writes up to K batches at once, each with its own sinks, to hide the
round trips of one behind the others' (see ``pipeline.jobs.in_flight``); the steps after
the sinks (dead letters, the commit) still happen batch by batch in reading order, on the
loop's own thread, which alone speaks to Kafka.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Message

from pipeline.config.settings import Settings
from pipeline.errors import SinkUnavailable
from pipeline.events.decode import EventDecoder, InvalidEvent
from pipeline.jobs.consume_defaults import BATCH_SIZE, IN_FLIGHT, MAX_IN_FLIGHT
from pipeline.jobs.in_flight import Flight, Turn, Window
from pipeline.kafka.consumer import GroupConsumer, GroupProtocol
from pipeline.kafka.dead_letters import DeadLetter, DeadLetterSender
from pipeline.kafka.hold import Backoff, HoldController
from pipeline.kafka.records import coordinates
from pipeline.sinks.batch import Envelope, Refusal
from pipeline.sinks.writer import BatchResult, BatchWriter

log = logging.getLogger(__name__)

FAULT_ENV = "PIPELINE_FAULT_KILL_AT"


FAULT_STAGES = ("after_opensearch_events", "after_postgres", "after_opensearch", "after_dead_letters")
"""The crash windows of one batch, in order: the new events indexed in OpenSearch but the
PostgreSQL transaction not committed; committed but the session rows not indexed; both
sinks done but no dead letter sent; dead letters sent but the offsets not committed."""


def _read_fault_point() -> tuple[str, int] | None:
    """TEST-ONLY fault hook, read once at import: ``PIPELINE_FAULT_KILL_AT=STAGE:N``.

    STAGE is one of :data:`FAULT_STAGES`; N counts this process's batches from 1. The
    process SIGKILLs itself the first time it reaches STAGE in batch N or a later one
    (a stage such as sending dead letters happens only in batches that have some), so
    crash-recovery tests can hit those exact windows. Unset (production) it does nothing.
    """
    raw = os.environ.get(FAULT_ENV, "").strip()
    if not raw:
        return None
    stage, _, n = raw.partition(":")
    if stage not in FAULT_STAGES or not n.isdigit():
        raise ValueError(f"{FAULT_ENV} must be STAGE:N with STAGE one of {', '.join(FAULT_STAGES)}, not {raw!r}")
    return stage, int(n)


_FAULT_POINT = _read_fault_point()


def _fault_point(stage: str, batch: int) -> None:
    """SIGKILL this process if the test-only fault hook names this stage and batch N <= ``batch``."""
    if _FAULT_POINT is not None and _FAULT_POINT[0] == stage and batch >= _FAULT_POINT[1]:
        os.kill(os.getpid(), signal.SIGKILL)


STAGES = ("poll", "decode", "postgres", "opensearch", "dead_letter", "commit")


@dataclass
class ConsumeStats:
    messages: int = 0
    events: int = 0
    dead_letters: int = 0
    sessions_written: int = 0
    batches: int = 0
    retries: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def to_dict(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "events": self.events,
            "dead_letters": self.dead_letters,
            "sessions_written": self.sessions_written,
            "batches": self.batches,
            "retries": self.retries,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass(frozen=True)
class ConsumeOptions:
    topic: str
    dead_letter_topic: str
    group: str
    batch_size: int = BATCH_SIZE
    batch_wait_s: float = 0.25
    drain: bool = False
    """Stop once the whole group has committed everything that was in the topic."""
    idle_exit_s: float | None = None
    backoff: Backoff = Backoff()
    """How long to wait between attempts at a sink that is down (see :mod:`pipeline.kafka.hold`)."""
    progress_every_s: float = 5.0
    index_prefix: str = "clickstream"
    session_timeout_ms: int | None = None
    """Classic protocol only: override the group session timeout (default 45 s), how soon a dead
    member's partitions move. Under KIP-848 that is the group's ``consumer.session.timeout.ms``."""
    group_protocol: GroupProtocol = "auto"
    """``consumer`` (KIP-848), ``classic``, or ``auto``: KIP-848 where the broker offers it."""
    in_flight: int = IN_FLIGHT
    """Batches written at once, each by its own PostgreSQL connection and OpenSearch client;
    committed strictly in reading order all the same (see ``pipeline.jobs.in_flight``)."""


class Sinks:
    """The two sinks, and the writer that keeps them in agreement."""

    def __init__(self, settings: Settings, index_prefix: str, before_commit: Callable[[], None] | None = None) -> None:
        from pipeline.sinks.opensearch.index import OpenSearchIndex
        from pipeline.sinks.postgres.store import PostgresStore

        self.postgres = PostgresStore(settings)
        self.opensearch = OpenSearchIndex(settings, index_prefix=index_prefix)
        self.writer = BatchWriter(self.postgres, self.opensearch, before_commit=before_commit)

    def close(self) -> None:
        self.postgres.close()
        self.opensearch.close()


class _Slot:
    """One writer of the window: its own sinks, and the number of the batch it writes now (for the fault hook)."""

    def __init__(self, settings: Settings, index_prefix: str) -> None:
        self.number = 0
        self.sinks = Sinks(settings, index_prefix, before_commit=self._before_commit)

    def _before_commit(self) -> None:
        _fault_point("after_opensearch_events", self.number)


@dataclass(eq=False)
class _Batch:
    """A batch between reading and committing: what was read and decoded, and how far its write got."""

    number: int
    seq: int
    messages: list[Message]
    envelopes: list[Envelope]
    dead: list[DeadLetter]
    result: BatchResult | None = None
    sessions_indexed: bool = False
    seconds: dict[str, float] = field(default_factory=lambda: {"postgres": 0.0, "opensearch": 0.0})


class ConsumeLoop:
    """One consumer process's loop. Several may run in one group, on one machine or many."""

    def __init__(
        self,
        settings: Settings,
        options: ConsumeOptions,
        *,
        stop: threading.Event | None = None,
        on_batch: Callable[[ConsumeStats], None] | None = None,
    ) -> None:
        if not 1 <= options.in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"in_flight must be 1 to {MAX_IN_FLIGHT}, not {options.in_flight}")
        self.settings = settings
        self.options = options
        self.stop = stop or threading.Event()
        self.drain = threading.Event()
        """Set (by ``--drain`` or by ``pipeline run`` after producing) to stop once the group has caught up."""
        if options.drain:
            self.drain.set()
        self.drained = False
        self.stats = ConsumeStats()
        self._on_batch = on_batch
        self._decoder = EventDecoder()
        self._slots = [_Slot(settings, options.index_prefix) for _ in range(options.in_flight)]
        self._window: Window[_Slot, _Batch] = Window(self._slots)
        self._launched = 0
        overrides = {} if options.session_timeout_ms is None else {"session.timeout.ms": options.session_timeout_ms}
        self._kafka = GroupConsumer(
            settings.kafka,
            topic=options.topic,
            group=options.group,
            overrides=overrides,
            protocol=options.group_protocol,
        )
        self._hold = HoldController(self._kafka, options.backoff, stopping=self.stop.is_set)
        self._dead_letters = DeadLetterSender(settings.kafka, options.dead_letter_topic, options.group)

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> ConsumeStats:
        started = last_progress = time.monotonic()
        last_message = started
        pending: list[Message] = []
        window = self._window
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                batch = pending or self._kafka.poll_batch(self.options.batch_size, self.options.batch_wait_s)
                pending = []
                self.stats.stage_seconds["poll"] += time.perf_counter() - t0
                now = time.monotonic()
                if batch:
                    last_message = now
                    self._launch(batch)
                # Land what is written; wait for the oldest batch when no writer is free, or
                # when nothing new was read (rather than poll in a tight loop).
                pending = self._land(block=window.full or not batch)
                if not batch and window.empty and self._kafka.retry_pending() and self._should_exit(now - last_message):
                    break
                if now - last_progress >= self.options.progress_every_s:
                    last_progress = now
                    self._log_progress(now - started)
            while not window.empty:  # stopping: finish every batch in hand (what was re-read waits for the restart)
                self._land(block=True)
        finally:
            window.close()
            self._kafka.close()
            self._dead_letters.close()
            for slot in self._slots:
                slot.sinks.close()
        self._log_progress(time.monotonic() - started, final=True)
        return self.stats

    def _should_exit(self, idle_s: float) -> bool:
        if self.options.idle_exit_s is not None and idle_s >= self.options.idle_exit_s:
            log.info("no message for %.0f s: stopping", idle_s)
            return True
        if self.drain.is_set() and idle_s >= 1.0:
            lag = self._kafka.group_lag()
            if lag == 0:
                log.info("the group has committed everything in %s: stopping", self.options.topic)
                self.drained = True
                return True
        return False

    # --- one batch ----------------------------------------------------------------------
    def _launch(self, messages: list[Message]) -> None:
        """Record the batch as read, decode it, and start writing it on a free writer."""
        seq = self._kafka.begin_batch(messages)
        t0 = time.perf_counter()
        envelopes, dead = self._decode(messages)
        self.stats.stage_seconds["decode"] += time.perf_counter() - t0
        self._launched += 1
        self._window.launch(_Batch(self._launched, seq, messages, envelopes, dead), _write)

    def _land(self, *, block: bool) -> list[Message]:
        """Finish every batch whose write has ended, oldest first (waiting for the oldest if ``block``);
        returns messages to re-read first (rare: delivered while waiting out an outage)."""
        unread: list[Message] = []
        while (flight := self._window.land(block=block)) is not None:
            try:
                unread += self._finish(flight)
            finally:
                self._window.release(flight)
            block = False
        return unread

    def _finish(self, flight: Flight[_Slot, _Batch]) -> list[Message]:
        """The rest of the batch after its write, on the loop's thread: dead letters, then the commit.

        A write that found a sink down is retried here, holding the partitions as
        :mod:`pipeline.kafka.hold` says, on the batch's own writer (idle now); any other
        failure stops the consumer.
        """
        batch = flight.payload
        failure = flight.future.exception()
        unread: list[Message] = []
        if failure is not None:
            if not isinstance(failure, SinkUnavailable):
                raise failure
            unread = self._write_held(flight, failure)
        stages = self.stats.stage_seconds
        stages["postgres"] += batch.seconds["postgres"]
        stages["opensearch"] += batch.seconds["opensearch"]
        dead = batch.dead
        if batch.result is not None and batch.result.refused:
            dead = dead + _refused_letters(batch.messages, batch.result.refused)
        if dead:
            t0 = time.perf_counter()
            self._dead_letters.send(dead)
            stages["dead_letter"] += time.perf_counter() - t0
            _fault_point("after_dead_letters", batch.number)

        t0 = time.perf_counter()
        self._kafka.commit_batch(batch.seq)
        stages["commit"] += time.perf_counter() - t0

        self.stats.messages += len(batch.messages)
        self.stats.events += len(batch.envelopes)
        self.stats.dead_letters += len(dead)
        self.stats.sessions_written += len(batch.result.sessions) if batch.result is not None else 0
        self.stats.batches += 1
        if self._on_batch is not None:
            self._on_batch(self.stats)
        return unread

    def _write_held(self, flight: Flight[_Slot, _Batch], failure: SinkUnavailable) -> list[Message]:
        """Write the rest of a batch whose first attempt found a sink down, holding the partitions meanwhile."""
        batch = flight.payload
        first: list[SinkUnavailable] = [failure]

        def attempt() -> None:
            if first:  # the attempt that already failed counts as the first: wait before trying again
                raise first.pop()
            _write(flight.writer, flight.turn, batch)

        service = "a sink" if batch.result is None else "OpenSearch"
        held = self._hold.call(service, attempt)
        self.stats.retries += held.retries
        return held.reread

    def _decode(self, batch: Sequence[Message]) -> tuple[list[Envelope], list[DeadLetter]]:
        now = dt.datetime.now(dt.UTC)
        decode = self._decoder.decode
        envelopes: list[Envelope] = []
        dead: list[DeadLetter] = []
        for msg in batch:
            try:
                event = decode(msg.value() or b"", now)
            except InvalidEvent as err:
                dead.append(DeadLetter.from_message(msg, reason=err.reason.value, field=err.field, detail=err.message))
                continue
            _, partition, offset = coordinates(msg)
            envelopes.append(Envelope(event, partition, offset, now))
        return envelopes, dead

    def _log_progress(self, elapsed: float, *, final: bool = False) -> None:
        s = self.stats
        rate = s.messages / elapsed if elapsed > 0 else 0.0
        lag = None if final else self._kafka_lag_safe()
        log.info(
            "%s%d messages (%d events, %d dead letters) in %d batches, %.0f msg/s%s",
            "done: " if final else "",
            s.messages,
            s.events,
            s.dead_letters,
            s.batches,
            rate,
            "" if lag is None else f", group lag {lag}",
        )

    def _kafka_lag_safe(self) -> int | None:
        return self._kafka.group_lag(timeout=2.0)


def _refused_letters(batch: Sequence[Message], refused: Sequence[Refusal]) -> list[DeadLetter]:
    """The dead letters of events a sink refused (or that conflict with a stored copy), from their messages."""
    wanted = {(r.envelope.partition, r.envelope.offset): r for r in refused}
    letters = []
    for msg in batch:
        refusal = wanted.get(coordinates(msg)[1:])
        if refusal is not None:
            letters.append(
                DeadLetter.from_message(msg, reason=refusal.reason.value, field=refusal.field, detail=refusal.detail)
            )
    return letters


def _write(slot: _Slot, turn: Turn, batch: _Batch) -> None:
    """Write the batch into both sinks with the slot's writer (on a writer thread when K > 1), or
    whatever of it is still missing after a failed attempt: the events, then the session rows.
    Touches neither Kafka nor the loop's statistics."""
    slot.number = batch.number
    if not batch.envelopes:
        return  # nothing valid: only dead letters
    writer = slot.sinks.writer
    if batch.result is None:
        turn.wait()
        result = writer.store(batch.envelopes, inserted=turn.done)
        batch.seconds["postgres"] += result.seconds["postgres"]
        batch.seconds["opensearch"] += result.seconds["opensearch"]
        batch.result = result
        _fault_point("after_postgres", batch.number)
    if not batch.sessions_indexed:
        batch.seconds["opensearch"] += writer.index_sessions(batch.result.sessions)
        batch.sessions_indexed = True
        _fault_point("after_opensearch", batch.number)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM finish the batches in hand, commit them, and leave the group."""

    def handler(signum: int, _frame: object) -> None:
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
