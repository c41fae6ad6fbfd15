"""``pipeline produce``: the simulated shop's clickstream, sent to Kafka with every delivery accounted for.

Two modes. Backfill (no ``--rate``): as fast as possible, event times spread over a
window ending now (or ``--end-time``). Live (``--rate N``): N events per second with
event time = now. With the same ``--seed`` (and ``--end-time`` in backfill) the stream is
identical, ids included. ``--dump`` writes every message exactly as sent, so a test or a
person can recompute the expected results without trusting the pipeline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline.config.settings import KafkaSettings
from pipeline.errors import DeliveryError
from pipeline.jobs.progress import Progress
from pipeline.kafka.producer import TrackedProducer
from pipeline.simulation import (
    NO_FAULTS,
    FaultConfig,
    LiveStream,
    SimulatedMessage,
    SimulationConfig,
    backfill_batches,
    backfill_count,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProduceOptions:
    topic: str
    seed: int
    events: int | None = None
    duration_s: float | None = None
    rate: float | None = None
    end_time: dt.datetime | None = None
    window: dt.timedelta = dt.timedelta(hours=24)
    faults: FaultConfig = field(default_factory=lambda: NO_FAULTS)
    dump: Path | None = None
    producer_overrides: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.events is None and self.duration_s is None:
            raise ValueError("give --events or --duration")
        if self.rate is None and self.events is None:
            raise ValueError("backfill mode (no --rate) needs --events")


@dataclass(frozen=True)
class ProduceResult:
    sent: int
    delivered: int
    failed: int
    seconds: float
    seed: int
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"sent {self.sent}, delivered {self.delivered}, failed {self.failed} "
            f"in {self.seconds:.1f} s ({self.rate:,.0f} events/s), seed {self.seed}"
        )


def backfill_messages(options: ProduceOptions) -> Iterator[SimulatedMessage]:
    """``batched_backfill``, one message at a time."""
    for batch in batched_backfill(options):
        yield from batch


def batched_backfill(options: ProduceOptions) -> Iterator[list[SimulatedMessage]]:
    """Exactly ``options.events`` messages of a simulated window ending at ``end_time``, in lists.

    The rate is calibrated so one simulation of the window holds about that many; if it
    falls short, another population (derived seed) fills the same window, so the count is
    always met and the stream stays deterministic.
    """
    assert options.events is not None
    end = options.end_time or dt.datetime.now(dt.UTC)
    return _backfill_rounds(options, end, backfill_rate(options, end))


def _backfill_rounds(options: ProduceOptions, end: dt.datetime, rate: float) -> Iterator[list[SimulatedMessage]]:
    assert options.events is not None
    remaining = options.events
    for round_ in itertools.count():
        config = SimulationConfig(
            seed=options.seed + round_ * 1_000_003, rate=rate, diurnal=options.window >= dt.timedelta(hours=24)
        )
        for batch in backfill_batches(config, end, window=options.window, faults=options.faults):
            if len(batch) >= remaining:
                yield batch[:remaining]
                return
            yield batch
            remaining -= len(batch)


def backfill_rate(options: ProduceOptions, end: dt.datetime, *, probe_share: float = 0.25) -> float:
    """The simulation rate at which the window holds just over ``events`` messages.

    How many messages a simulated day yields per unit of rate depends on visit shapes,
    returning users and the daily curve, so it is measured, not assumed: a probe run at a
    quarter of the rate counts the window (simulating its events without formatting
    them), and the rate is scaled from it. The stream is then cut at ``events``, so it
    ends close to ``end`` (within a few percent of the window).
    """
    assert options.events is not None
    seconds = options.window.total_seconds()
    diurnal = options.window >= dt.timedelta(hours=24)
    guess = max(1.0, options.events / seconds)
    probe = SimulationConfig(seed=options.seed, rate=guess * probe_share, diurnal=diurnal)
    counted = backfill_count(probe, end, window=options.window)
    per_rate = max(counted, 1) / (guess * probe_share)
    return max(0.001, 1.05 * options.events / per_rate)


def batched_live(options: ProduceOptions, stop: threading.Event) -> Iterator[list[SimulatedMessage]]:
    """Messages as they become due at ``--rate`` per second, event time = now, in the lists they come due in."""
    assert options.rate is not None
    start = dt.datetime.now(dt.UTC)
    stream = LiveStream(
        SimulationConfig(seed=options.seed, rate=options.rate, diurnal=False), start, faults=options.faults
    )
    # Building the simulation takes seconds; run its clock that much behind the wall
    # clock so the first events are not sent as one burst (they carry their own
    # occurred_at, a few seconds before they are sent, as a tracker's would).
    lag = dt.datetime.now(dt.UTC) - start
    deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
    remaining = options.events
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        batch = stream.until(dt.datetime.now(dt.UTC) - lag)
        if remaining is not None:
            batch = batch[:remaining]
            remaining -= len(batch)
        if batch:
            yield batch
        if remaining == 0:
            return
        due = stream.next_due()
        if due is not None:
            wait = (due + lag - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                stop.wait(min(wait, 0.05))


def produce(kafka: KafkaSettings, options: ProduceOptions, *, stop: threading.Event | None = None) -> ProduceResult:
    """Send the stream; raise ``DeliveryError`` if any message was not delivered."""
    stop = stop or threading.Event()
    producer = TrackedProducer(kafka, "producer", options.producer_overrides)
    batches: Iterable[list[SimulatedMessage]] = (
        batched_live(options, stop) if options.rate is not None else batched_backfill(options)
    )
    if options.rate is None:
        deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
        batches = _until(batches, deadline, stop)

    progress = Progress(
        "produce",
        lambda: (producer.sent, {"in flight": producer.pending, "failed": producer.stats.failed}),
        total=options.events,
        unit="events sent",
    )
    started = time.monotonic()
    dump: IO[bytes] | None = open(options.dump, "wb") if options.dump else None
    try:
        producer.send_all(options.topic, batches, dump=dump, on_batch=progress.tick)
        stats = producer.flush_all()
    finally:
        if dump is not None:
            dump.close()
        progress.done()
    result = ProduceResult(
        sent=producer.sent,
        delivered=stats.delivered,
        failed=stats.failed + producer.pending,
        # (pending is non-zero only if flush_all timed out: those are reported as failed)
        seconds=time.monotonic() - started,
        seed=options.seed,
        errors=dict(stats.errors),
    )
    if result.failed:
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(result.errors.items())) or "no delivery report"
        raise DeliveryError(
            f"{result.failed} of {result.sent} message(s) were not delivered ({kinds}); {result.line()}"
        )
    return result


def _until(
    batches: Iterable[list[SimulatedMessage]], deadline: float | None, stop: threading.Event
) -> Iterator[list[SimulatedMessage]]:
    for batch in batches:
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            return
        yield batch
