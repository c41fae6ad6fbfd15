"""Freshness: how long after an event is sent it can be read in each sink, measured from outside.

Method (why it is sound):

* **Send time** is the Kafka message timestamp. The topic keeps ``CreateTime``, which
  librdkafka stamps when ``produce()`` is called, i.e. when the producer sends the event;
  it is read back from the topic with the admin certificate by a tail reader that starts
  at the offsets the topic had before the load began. The producer's ``--dump`` has no
  times, and ``events.ingested_at`` is the wrong end: the consumer sets it when it
  decodes a batch, before PostgreSQL commits it, so it would hide the write time.
* **Visible time** is observed by polling, every ``tick_s`` (50 ms), exactly what a
  reader would see: a sample of the events (every ``sample_every``-th offset of each
  partition) stays pending until a query finds it, and its visible time is the START of
  that query (the snapshot the query read), so the error is at most one tick plus the
  time between polls, and always in the pessimistic direction. Each poll asks only for
  the oldest pending samples of each partition (see ``_Poller``), so the polling costs
  the sinks little even when the consumer falls far behind.
  - ``postgres_events``: ``SELECT ... FROM events WHERE event_id = ANY(...)``
    (primary-key lookups; autocommit, so every query reads the latest commits).
  - ``postgres_sessions``: the event's session row covers it, i.e. ``sessions.ended_at >=
    occurred_at`` (live events of a session are sent in time order and keyed by user to
    one partition, so the row reaching the event's time has merged it). The sink writes
    events and sessions in one transaction, so this should equal the events figure; it
    is measured anyway to show it.
  - ``opensearch_events``: an ``ids`` query on the events alias (a search, not a GET: a
    GET by id is real-time and would say nothing about searchability). Documents become
    searchable only at the next refresh (``refresh_interval``, ``DEFAULT_REFRESH_INTERVAL``
    in ``pipeline/sinks/opensearch/mappings.py``), so expect PostgreSQL's figure plus up
    to one interval. The polling itself keeps the shards out of OpenSearch's "search
    idle" state, so scheduled refreshes do happen at every interval.
* Only samples sent inside the measured window count (the caller starts it once the
  consumer has caught up with the load, see ``live.measure_freshness``); how
  many were left out before it, and the worst delay among them, are reported.
* All clocks are this machine's wall clock (``time.time()`` here, librdkafka's in the
  producer), so there is no skew between send and visible times.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import msgspec
import psycopg
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

from benchmarks.whole_pipeline.records import FreshnessPlot, FreshnessWindow, SinkFreshness
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.kafka_offsets import position

log = logging.getLogger("pipeline_bench.freshness")

SINKS = ("postgres_events", "postgres_sessions", "opensearch_events")


class _Probe(msgspec.Struct):
    """The three fields of an event the sampler needs (the rest of the JSON is skipped)."""

    event_id: str
    session_id: str
    occurred_at: str


@dataclass
class Sample:
    event_id: str
    session_id: str
    occurred_at: dt.datetime
    sent: float
    """Kafka CreateTime, seconds since the epoch."""
    partition: int
    offset: int
    seen: dict[str, float] = field(default_factory=dict)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every reported figure is a measured one)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class _Poller(threading.Thread):
    """A thread that polls one sink every ``tick_s`` for the samples not yet seen there.

    Bounded cost: only the oldest ``HEAD`` pending samples of each partition are asked
    for, and the next ``HEAD`` of a partition only when all of its previous ones were
    found (in the same tick, with the new query's start time). The pipeline writes each
    partition in offset order (a batch is one transaction, then one bulk request, and
    OpenSearch's refresh exposes everything indexed before it), so what becomes visible
    is always a prefix of a partition's pending samples and nothing is missed; but a
    consumer that falls behind no longer makes every poll ask for tens of thousands of
    ids, which loaded the very services being measured (an early version did: the
    polling then cost the machine more CPU than the consumer).
    """

    HEAD = 64

    def __init__(self, name: str, tick_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self.sink = name
        self.tick_s = tick_s
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._incoming: list[Sample] = []
        self._lock = threading.Lock()
        self.pending: dict[int, deque[Sample]] = {}
        """Per partition, in offset order (the tail reads each partition in order)."""
        self.queries = 0
        self.query_seconds = 0.0

    def offer(self, samples: list[Sample]) -> None:
        with self._lock:
            self._incoming.extend(samples)

    def _take(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
            for sample in incoming:  # under the lock: ``outstanding`` reads the dict from another thread
                self.pending.setdefault(sample.partition, deque()).append(sample)

    @property
    def outstanding(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.pending.values()) + len(self._incoming)

    def run(self) -> None:
        try:
            self.open()
            while not self.stop_event.is_set():
                started = time.monotonic()
                self._take()
                self._poll_heads()
                self.stop_event.wait(max(0.0, self.tick_s - (time.monotonic() - started)))
        except BaseException as exc:  # reported by the caller; a dead poller must not hang the run
            self.error = exc
            log.exception("%s failed", self.name)
        finally:
            self.close()

    def _head(self, partition: int) -> list[Sample]:
        return list(islice(self.pending[partition], self.HEAD))

    def _poll_heads(self) -> None:
        heads = {p: self._head(p) for p, samples in self.pending.items() if samples}
        while heads:
            at = time.time()
            t0 = time.perf_counter()
            found = self.visible([s for head in heads.values() for s in head])
            self.query_seconds += time.perf_counter() - t0
            self.queries += 1
            more: dict[int, list[Sample]] = {}
            for p, head in heads.items():
                queue = self.pending[p]
                for _ in head:  # take the head off (O(HEAD)), put back what is still unseen
                    queue.popleft()
                unseen = []
                for sample in head:
                    if sample.event_id in found:
                        sample.seen[self.sink] = at
                    else:
                        unseen.append(sample)
                queue.extendleft(reversed(unseen))
                if not unseen and queue:
                    more[p] = self._head(p)
            heads = more

    def open(self) -> None: ...

    def close(self) -> None: ...

    def visible(self, samples: list[Sample]) -> set[str]:
        """The event ids among ``samples`` that a reader of the sink can see now."""
        raise NotImplementedError


class _PostgresPoller(_Poller):
    def __init__(self, settings: Settings, tick_s: float, sink: str) -> None:
        super().__init__(sink, tick_s)
        self.conninfo = settings.postgres.conninfo("app")
        self.conn: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        self.conn = psycopg.connect(self.conninfo, autocommit=True, application_name="pipeline-bench-freshness")
        self.conn.execute("SET TIME ZONE 'UTC'")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def visible(self, samples: list[Sample]) -> set[str]:
        assert self.conn is not None
        if self.sink == "postgres_events":
            return {
                r[0]
                for r in self.conn.execute(
                    "SELECT event_id::text FROM events WHERE event_id = ANY(%s::uuid[])",
                    [[s.event_id for s in samples]],
                    prepare=True,
                )
            }
        ended = dict(
            self.conn.execute(
                "SELECT session_id, ended_at FROM sessions WHERE session_id = ANY(%s::text[])",
                [list({s.session_id for s in samples})],
                prepare=True,
            ).fetchall()
        )
        return {s.event_id for s in samples if (end := ended.get(s.session_id)) is not None and end >= s.occurred_at}


class _OpenSearchPoller(_Poller):
    def __init__(self, settings: Settings, tick_s: float, alias: str) -> None:
        super().__init__("opensearch_events", tick_s)
        self.alias = alias
        self.client = opensearch_client(settings.opensearch, "admin", timeout=30)

    def close(self) -> None:
        self.client.close()

    def visible(self, samples: list[Sample]) -> set[str]:
        ids = [s.event_id for s in samples]
        response = self.client.search(
            index=self.alias,
            body={"query": {"ids": {"values": ids}}, "size": len(ids), "_source": False, "track_total_hits": False},
            filter_path="hits.hits._id",
            ignore_unavailable=True,
        )
        return {hit["_id"] for hit in response.get("hits", {}).get("hits", [])}


class FreshnessSampler:
    """Tails the topic from its current end, samples events, and polls the three sinks for them."""

    def __init__(
        self, settings: Settings, topic: str, index_prefix: str, *, sample_every: int, tick_s: float = 0.05
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.sample_every = max(1, sample_every)
        self.tick_s = tick_s
        self.samples: list[Sample] = []
        self.messages_seen = 0
        self.timestamp_types: set[int] = set()
        self.sent_per_100ms: dict[int, int] = {}
        """Messages per 100 ms of CreateTime: the real send rate, start-up burst included."""
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.kafka.client_config("admin"),
                "group.id": "pipeline-bench-tail",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        parts = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.start_offsets = {
            p: self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        }
        self._consumer.assign([TopicPartition(topic, p, o) for p, o in self.start_offsets.items()])
        self.pollers: list[_Poller] = [
            _PostgresPoller(settings, tick_s, "postgres_events"),
            _PostgresPoller(settings, tick_s, "postgres_sessions"),
            _OpenSearchPoller(settings, tick_s, IndexNames(index_prefix).events_alias),
        ]
        self._tail = threading.Thread(target=self._tail_loop, name="freshness-tail", daemon=True)
        self.tail_error: BaseException | None = None

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()
        self._tail.start()

    def _tail_loop(self) -> None:
        decode = msgspec.json.Decoder(_Probe).decode
        every = self.sample_every
        buckets = self.sent_per_100ms
        try:
            while not self._stop.is_set():
                new: list[Sample] = []
                for msg in self._consumer.consume(num_messages=2_000, timeout=0.02):
                    if msg.error() is not None:
                        continue
                    self.messages_seen += 1
                    kind, ms = msg.timestamp()
                    bucket = ms // 100
                    buckets[bucket] = buckets.get(bucket, 0) + 1
                    partition, offset = position(msg)
                    if offset % every:
                        continue
                    self.timestamp_types.add(kind)
                    try:
                        probe = decode(msg.value() or b"")
                        occurred = dt.datetime.fromisoformat(probe.occurred_at)
                    except (msgspec.DecodeError, ValueError):
                        continue  # a malformed message never becomes visible; not a freshness sample
                    new.append(Sample(probe.event_id, probe.session_id, occurred, ms / 1000.0, partition, offset))
                if new:
                    self.samples.extend(new)
                    for poller in self.pollers:
                        poller.offer(new)
        except BaseException as exc:
            self.tail_error = exc
            log.exception("freshness tail reader failed")

    def outstanding(self) -> int:
        return sum(p.outstanding for p in self.pollers)

    def wait_visible(self, *, stall_s: float = 30.0, cap_s: float = 600.0) -> bool:
        """After the load: wait until every sample was seen everywhere.

        A consumer that fell behind may need minutes to work off its backlog, and its
        delays are exactly what must be measured, so this waits as long as samples keep
        being found; it gives up after ``stall_s`` without progress or ``cap_s`` in all.
        """
        started = last_progress = time.monotonic()
        time.sleep(max(0.2, 4 * self.tick_s))  # let the tail pick up the last messages
        outstanding = self.outstanding()
        while outstanding and time.monotonic() - started < cap_s:
            if any(p.error is not None for p in self.pollers):
                return False
            time.sleep(self.tick_s)
            now_outstanding = self.outstanding()
            if now_outstanding < outstanding:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall_s:
                return False
            outstanding = now_outstanding
        return outstanding == 0

    def stop(self) -> None:
        self._stop.set()
        for poller in self.pollers:
            poller.stop_event.set()
        self._tail.join(timeout=10)
        for poller in self.pollers:
            poller.join(timeout=30)
        self._consumer.close()

    def errors(self) -> list[str]:
        out = [f"{p.name}: {type(p.error).__name__}: {p.error}" for p in self.pollers if p.error is not None]
        if self.tail_error is not None:
            out.append(f"tail: {type(self.tail_error).__name__}: {self.tail_error}")
        return out

    def first_sent(self) -> float | None:
        """CreateTime (epoch seconds, 100 ms resolution) of the first message of the load, once seen."""
        buckets = self.sent_per_100ms
        return min(buckets) / 10 if buckets else None

    def results(self, window_start: float, window_end: float) -> tuple[FreshnessWindow, FreshnessPlot]:
        """Per-sink figures (seconds) over samples sent in [window_start, window_end), and chart data.

        Samples sent before the window (warm-up) are excluded; how many, and the worst delay
        among them, are reported.
        """
        first = self.first_sent() or window_start
        measured = [s for s in self.samples if window_start <= s.sent < window_end]
        warm = [s for s in self.samples if s.sent < window_start]
        in_window = sum(n for b, n in self.sent_per_100ms.items() if window_start <= b / 10 < window_end)
        span = window_end - window_start
        sinks: dict[str, SinkFreshness] = {}
        plot = FreshnessPlot(
            window=(window_start - first, window_end - first),
            send_rate=sorted((b / 10 - first, n * 10) for b, n in self.sent_per_100ms.items()),
        )
        for poller in self.pollers:
            sink = poller.sink
            values = sorted(s.seen[sink] - s.sent for s in measured if sink in s.seen)
            warm_values = [s.seen[sink] - s.sent for s in warm if sink in s.seen]
            plot.cdf[sink] = values
            plot.timeline[sink] = [(s.sent - first, s.seen[sink] - s.sent) for s in self.samples if sink in s.seen]
            thirds = [sorted(s.seen[sink] - s.sent for s in part if sink in s.seen) for part in _thirds(measured)]
            sinks[sink] = SinkFreshness(
                p50_s=_r(percentile(values, 0.5)),
                p95_s=_r(percentile(values, 0.95)),
                p99_s=_r(percentile(values, 0.99)),
                max_s=_r(values[-1] if values else None),
                min_s=_r(values[0] if values else None),
                mean_s=_r(sum(values) / len(values) if values else None),
                seen=len(values),
                never_seen=sum(1 for s in measured if sink not in s.seen),
                p50_by_third_s=[_r(percentile(t, 0.5)) for t in thirds],
                warmup_max_s=_r(max(warm_values) if warm_values else None),
                polls=poller.queries,
                mean_poll_ms=_r(1000 * poller.query_seconds / poller.queries if poller.queries else None),
                quantiles_s=[_r(percentile(values, i / 100)) for i in range(1, 101)] if values else [],
            )
        window = FreshnessWindow(
            samples=len(measured),
            sample_every=self.sample_every,
            tick_s=self.tick_s,
            messages_tailed=self.messages_seen,
            warmup_samples_excluded=len(warm),
            sent_in_first_0_5_s=sum(n for b, n in self.sent_per_100ms.items() if b / 10 < first + 0.5),
            window_s=round(span, 2),
            window_messages=in_window,
            window_send_rate=round(in_window / span, 1) if span > 0 else None,
            timestamp_type=sorted(
                {"CreateTime" if t == TIMESTAMP_CREATE_TIME else f"type {t}" for t in self.timestamp_types}
            ),
            sinks=sinks,
        )
        return window, plot


def _thirds(samples: list[Sample]) -> list[list[Sample]]:
    """The window cut into three equal spans of send time: a p50 that grows from one to the next
    means the consumer was falling behind (not a steady state)."""
    if not samples:
        return [[], [], []]
    lo, hi = min(s.sent for s in samples), max(s.sent for s in samples)
    span = (hi - lo) / 3 or 1.0
    parts: list[list[Sample]] = [[], [], []]
    for s in samples:
        parts[min(2, int((s.sent - lo) / span))].append(s)
    return parts


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
