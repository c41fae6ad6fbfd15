"""The benchmark's report as typed records: the JSON file is encoded from them and the table and chart read them.

Why records and not dicts: a figure is named once, here, with its type; the phase that
measures it fills it, the judge, the table and the chart read it by attribute, and the
JSON keys are the field names in the order they stand. To add a figure, add a field to
its record and set it where it is measured: nothing else needs to know.

Fields are keyword-only so that defaults may stand anywhere; the fixed explanations that
travel with a figure in the JSON (``how``, ``*_note``) are defaults. ``None`` is a figure
that could not be measured (it is written as ``null``); ``UNSET`` is a key left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

import msgspec

T = TypeVar("T")


class Record(msgspec.Struct, kw_only=True):
    """Base of every record of the report (each subclass repeats ``kw_only``: msgspec does not inherit it)."""


class Spread(Record, kw_only=True):
    """One figure over the repeats of its phase: the median, the lowest and the highest, and every
    value in the order the repeats ran (``None``: that repeat could not measure it)."""

    median: float | None
    low: float | None
    high: float | None
    values: list[float | None]

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Self:
        known = sorted(v for v in values if v is not None)
        if not known:
            return cls(median=None, low=None, high=None, values=list(values))
        return cls(median=round(statistics.median(known), 4), low=known[0], high=known[-1], values=list(values))


def median_of(repeats: Sequence[T], key: Callable[[T], float]) -> T:
    """The repeat whose ``key`` is the median (the lower middle one of an even number)."""
    ordered = sorted(repeats, key=key)
    return ordered[(len(ordered) - 1) // 2]


# --- the machine and the software -------------------------------------------------------------


class Machine(Record, kw_only=True):
    cores: int | None
    memory_gib: float | None
    cpu_model: str | None
    kernel: str
    hostname: str
    load_average_before: list[float]
    load_average_after: list[float] | None = None


class Git(Record, kw_only=True):
    commit: str | None
    uncommitted_changes: bool | None


class Versions(Record, kw_only=True):
    python: str
    kafka: str
    librdkafka: str
    postgresql: str | None
    opensearch: str
    packages: dict[str, str | None]
    git: Git


class Settings(Record, kw_only=True):
    events: int
    seed: int
    freshness_rate: float
    freshness_seconds: float
    freshness_warmup_s: float
    freshness_max_warmup_s: float
    freshness_samples_per_s: int
    topic: str
    partitions: int
    consumer_batch_size: int
    consumer_batch_wait_s: float
    producer_config: dict[str, Any]
    opensearch_refresh_interval: str
    opensearch_max_docs_per_request: int
    opensearch_max_bytes_per_request: int
    repeat: int
    latency_events: int
    latency_rtt_ms: list[float]
    stack_outputs: str


# --- processes and phases ---------------------------------------------------------------------


class ProcessUsage(Record, kw_only=True):
    """What one finished pipeline process cost: CPU seconds from ``wait4`` (``cpu_s`` = user + system,
    to the millisecond), peak RSS from ``VmHWM`` (see ``procs.py``)."""

    returncode: int
    wall_s: float
    user_s: float
    system_s: float
    max_rss_mib: float
    cpu_s: float


class PhaseUsage(Record, kw_only=True):
    """The whole machine during one phase: CPU use and each local service's CPU seconds."""

    wall_s: float
    machine_busy_pct: float | None
    machine_busy_cores: float | None
    cores: int
    service_cpu_s: dict[str, float]
    load_average_before: list[float]
    load_average_after: list[float]
    noisy: bool = False
    """The 1-minute load average before the phase was above ``procs.NOISY_LOAD``: other work
    shared the cores, so its figures say little about the pipeline."""
    settle_wait_s: float = 0.0
    """Seconds the phase waited, before it started, for the 1-minute load to fall to
    ``procs.NOISY_LOAD`` (at most ``procs.SETTLE_MAX_S``)."""


# --- limits -----------------------------------------------------------------------------------------


class Limit(Record, kw_only=True):
    """One ceiling: items per second over ``seconds`` of timed work."""

    items: int
    seconds: float
    events_per_s: float

    @classmethod
    def timed(cls, items: int, seconds: float, **details: Any) -> Self:
        return cls(
            items=items,
            seconds=round(seconds, 3),
            events_per_s=round(items / seconds if seconds > 0 else 0.0, 1),
            **details,
        )


class KafkaLimit(Limit, kw_only=True):
    batch: int
    certificate: str


class DecodeLimit(Limit, kw_only=True):
    invalid: int
    mean_message_bytes: float


class PostgresLimit(Limit, kw_only=True):
    rows_stored: int | None
    copy_statements: int
    rows_per_copy: int
    table: str
    format: str


class OpenSearchLimit(Limit, kw_only=True):
    documents_indexed: int
    requests: int
    mean_request_mib: float
    build_seconds: float
    build_docs_per_s: float | None
    max_docs_per_request: int
    concurrency: int
    scratch_prefix: str


class SlowestSink(Record, kw_only=True):
    name: str
    events_per_s: float


class Limits(Record, kw_only=True):
    kafka_consume: KafkaLimit
    decode: DecodeLimit
    postgres_copy: PostgresLimit
    opensearch_bulk: OpenSearchLimit
    slowest_sink: SlowestSink

    def each(self) -> dict[str, Limit]:
        """The four ceilings by name, in the order they are reported."""
        return {
            "kafka_consume": self.kafka_consume,
            "decode": self.decode,
            "postgres_copy": self.postgres_copy,
            "opensearch_bulk": self.opensearch_bulk,
        }


LIMIT_LABELS = {
    "kafka_consume": "Kafka consume, raw (consumer cert)",
    "decode": "decode + validate",
    "postgres_copy": "PostgreSQL binary COPY (LIKE events)",
    "opensearch_bulk": "OpenSearch bulk (sink builders)",
}
"""How the table and the chart name each limit."""


# --- producer and drains ---------------------------------------------------------------------------


class Producer(Record, kw_only=True):
    how: str = (
        "real CLI in a subprocess: `pipeline produce --events N --seed S`; rate = its own final line "
        "(generation + every delivery confirmed, from the start of produce() to the last delivery report)"
    )
    events: int
    failed: int
    seconds: float
    events_per_s: float
    wall_s: float
    wall_events_per_s: float
    process: ProcessUsage
    cpu_s_per_100k_events: float | None
    machine_busy_cores: float | None
    final_line: str


class DrainProcess(Record, kw_only=True):
    name: str
    events: int
    messages: int
    batches: int
    sessions_written: int
    dead_letters: int
    retries: int
    stage_seconds: dict[str, float]
    stage_events_per_s: dict[str, float]
    process: ProcessUsage
    cpu_s_per_100k_events: float | None
    peak_rss_mib: float
    terminated_after_drained: bool


class SinksCheck(Record, kw_only=True):
    """What the sinks hold after a drain (so a fast but empty run cannot pass unnoticed)."""

    postgres_events: int
    postgres_sessions: int
    opensearch_events: int
    opensearch_sessions: int


class DrainRun(Record, kw_only=True):
    consumers: int
    how: str = (
        "real CLI subprocesses `pipeline consume --drain --stats-json F` in one fresh group on fresh "
        "sinks; events_per_s = events / seconds from spawn until the group had committed the whole "
        "backlog (interpreter start and group join included); exit_* = until the last process exited"
    )
    events: int
    seconds: float
    events_per_s: float
    exit_wall_s: float
    exit_events_per_s: float
    active_events_per_s: float | None
    active_note: str = (
        "events / (last - first batch's ingested_at in PostgreSQL), one mean batch discounted: "
        "the rate while batches flow, without start-up and shutdown"
    )
    terminated_after_drained: list[str]
    killed: list[str]
    stage_seconds_total: dict[str, float]
    stage_share_pct: dict[str, float]
    processes: list[DrainProcess]
    cpu_s_per_100k_events: float | None
    peak_rss_mib_max: float
    machine_busy_cores: float | None
    service_cpu_s_per_100k_events: dict[str, float]
    service_cpu_note: str = (
        "this stack's service processes (devstack's pid files and their descendants) over the phase: "
        "includes other users of the same stack"
    )
    all_processes_cpu_s_per_100k_events: float | None
    all_processes_note: str = (
        "the consumer processes (rusage) plus every local service process (Kafka, PostgreSQL, "
        "OpenSearch; /proc/<pid>/stat over the phase): the whole cost of an event on this machine, "
        "other users of the shared stack included"
    )
    attributable_cpu_s_per_100k_events: dict[str, float]
    attributable_note: str = (
        "consumer: rusage; postgresql_backends: CPU of the backends connected to this run's "
        "database (sampled /proc); opensearch_index_operations: index+refresh+merge+flush "
        "time OpenSearch reports for this run's indices (thread time: about its CPU while "
        "cores are free, more when its threads wait for a core on a busy machine); Kafka's "
        "share is not attributable on a shared broker"
    )
    opensearch_op_seconds: dict[str, float]
    cpu_ceiling_events_per_s: float | None
    cpu_ceiling_note: str = (
        "cores x 100,000 / attributable CPU-s per 100k events: the rate at which these "
        "processes alone would use every core of the machine"
    )
    sinks_check: SinksCheck


# --- freshness -----------------------------------------------------------------------------------------


class SinkFreshness(Record, kw_only=True):
    """Send-to-visible delays (seconds) of the samples sent in the measured window, in one sink."""

    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None
    min_s: float | None
    mean_s: float | None
    seen: int
    never_seen: int
    p50_by_third_s: list[float | None]
    warmup_max_s: float | None
    polls: int
    mean_poll_ms: float | None
    quantiles_s: list[float | None]


class FreshnessWindow(Record, kw_only=True):
    """What the sampler saw of the measured window (``freshness.FreshnessSampler.results``)."""

    method: str = "Kafka CreateTime of sampled events -> start of the first poll that finds them"
    samples: int
    sample_every: int
    tick_s: float
    messages_tailed: int
    warmup_samples_excluded: int
    sent_in_first_0_5_s: int
    window_s: float
    window_messages: int
    window_send_rate: float | None
    timestamp_type: list[str]
    sinks: dict[str, SinkFreshness]


class LiveProducer(Record, kw_only=True):
    events: int
    seconds: float
    events_per_s: float
    process: ProcessUsage
    command: str


class LiveConsumer(Record, kw_only=True):
    events: int
    batches: int | None
    stage_seconds: dict[str, float] | None
    process: ProcessUsage
    cpu_s_per_100k_events: float | None


class MeasurementOverhead(Record, kw_only=True):
    benchmark_process_cpu_s: float
    opensearch_search_time_s: float
    note: str = (
        "CPU of this process (tail reader, pollers, lag watcher) and OpenSearch's query time "
        "for the polling searches during the phase: load the measurement itself adds"
    )


class Freshness(FreshnessWindow, kw_only=True):
    """The window's figures, then how the live run went."""

    rate_requested: float
    seconds_requested: float
    warmup_min_s: float
    warmup_max_s: float
    caught_up: bool
    window_starts_after_s: float
    lag_when_window_started: int | None
    producer: LiveProducer
    consumer: LiveConsumer
    all_samples_seen: bool
    errors: list[str]
    measurement_overhead: MeasurementOverhead
    machine_busy_cores: float | None
    opensearch_refresh_interval: str


class FreshnessPlot(Record, kw_only=True):
    """What the chart draws of the live run (not in the JSON): seconds from the first message of the load."""

    cdf: dict[str, list[float]] = {}
    """Sorted delays of the window's samples, per sink."""
    timeline: dict[str, list[tuple[float, float]]] = {}
    """(send time, delay) of every sample, per sink."""
    window: tuple[float, float] | None = None
    send_rate: list[tuple[float, float]] = []
    """(time, messages/s) per 100 ms of CreateTime."""
    lag: list[tuple[float, int]] = []
    """(time, consumer group lag in messages)."""


# --- round trips ---------------------------------------------------------------------------------------


class LatencyRound(Record, kw_only=True):
    repeat: int
    rtt_ms: float
    events: int
    drain_s: float
    events_per_s: float
    steady_events_per_s: float | None
    consumer_cpu_s: float
    load_average: list[float]
    batches: int
    client_turns: dict[str, int]
    """Per service, how often the consumer's connections spoke again after the service had: on
    request-response connections, the round trips it waited for (``benchmarks/latency/proxy.py``)."""


class Latency(Record, kw_only=True):
    """One consumer draining the same backlog through delay proxies at each added round-trip time."""

    how: str = (
        "`pipeline consume --drain` (one process) on fresh sinks, its stack outputs pointing at "
        "asyncio delay proxies in front of Kafka, PostgreSQL and OpenSearch that add half the "
        "round-trip time each way (benchmarks/latency/); 0 ms goes through the same proxies, so "
        "the ratios measure the latency alone; rounds interleaved, order rotated each repeat"
    )
    events: int
    in_flight: int
    rtt_ms: list[float]
    rounds: list[LatencyRound]
    events_per_s: dict[str, Spread]
    """Per round-trip time (``"50ms"``): the drain rate over the repeats."""
    ratio_to_0ms: dict[str, float | None]
    """Median rate at each round-trip time over the median at 0 ms."""


# --- the verdict ---------------------------------------------------------------------------------------


class Cost(Record, kw_only=True):
    all_processes_cpu_s_per_100k_events_drain1: float | None
    consumer_cpu_s_per_100k_events: float | None
    consumer_peak_rss_mib: float | None
    two_consumers_cpu_s_per_100k_events: float | None
    two_consumers_peak_rss_mib_max: float | None
    live_consumer_cpu_s_per_100k_events: float | None
    producer_cpu_s_per_100k_events: float | None
    service_cpu_s_per_100k_events_drain1: dict[str, float] | None
    how: str = (
        "CPU: os.wait4 rusage of each CLI process at exit (user+system); peak RSS: VmHWM from "
        "/proc/<pid>/status every 100 ms while it runs (not ru_maxrss, which inherits the parent's); "
        "services from /proc/<pid>/stat deltas over the phase (includes other users of the shared stack)"
    )


class Ratios(Record, kw_only=True):
    producer_vs_target: float | None
    drain1_vs_slowest_sink_limit: float | None
    drain1_active_vs_slowest_sink_limit: float | None
    drain2_vs_slowest_sink_limit: float | None
    drain2_vs_drain1: float | None
    postgres_limit_vs_opensearch_limit: float | None
    drain1_vs_kafka_consume_limit: float | None
    drain1_vs_decode_limit: float | None
    drain1_vs_postgres_copy_limit: float | None
    drain1_vs_opensearch_bulk_limit: float | None
    freshness_p99_postgres_events_vs_target: float | None
    freshness_p99_postgres_sessions_vs_target: float | None
    freshness_p99_opensearch_events_vs_target: float | None
    latency_50ms_vs_0ms: float | None


class Target(Record, kw_only=True):
    """A target compared, never asserted: PASS, MISS, or n/a when the figure is missing."""

    name: str
    measured: float | None
    op: str
    target: float
    unit: str
    result: str
    note: str


class Bottleneck(Record, kw_only=True):
    largest_stage_1_consumer: str
    share_pct: float
    stage_share_pct: dict[str, float]
    machine_busy_cores_drain1: float | None
    service_cpu_s_per_100k_events: dict[str, float]
    reading: str


class Files(Record, kw_only=True):
    json: str
    chart: str | None
    chart_skipped: str | msgspec.UnsetType = msgspec.UNSET


class Report(Record, kw_only=True):
    """The whole report; its fields are the JSON's top-level keys, in this order."""

    benchmark: str = "pipeline_bench"
    mode: str
    started_at: str
    finished_at: str | None = None
    command: list[str]
    machine: Machine
    versions: Versions
    settings: Settings | None = None
    limits: Limits | None = None
    producer: Producer | None = None
    drain: dict[str, DrainRun] = {}
    """Per consumer count, the repeat with the median rate (every repeat is in ``drain_repeats``)."""
    freshness: Freshness | None = None
    """The repeat with the median OpenSearch p99 (every repeat is in ``freshness_repeats``)."""
    latency: Latency | None = None
    spread: dict[str, Spread] = {}
    """The headline figures over the repeats; the targets are judged on their medians."""
    drain_repeats: dict[str, list[DrainRun]] = {}
    freshness_repeats: list[Freshness] = []
    cost: Cost | None = None
    ratios: Ratios | None = None
    targets: list[Target] = []
    bottleneck: Bottleneck | None = None
    phases: dict[str, PhaseUsage] = {}
    files: Files | None = None
    notes: list[str] = []
    error: str | msgspec.UnsetType = msgspec.UNSET
    """Only in the partial report of a failed run."""

    def to_json(self) -> str:
        """The report as indented JSON text (keys in field order; ``UNSET`` fields left out)."""
        return msgspec.json.format(msgspec.json.encode(self), indent=2).decode() + "\n"
