"""Judging a finished run: ratios, targets (PASS/MISS, compared and never asserted), cost and the bottleneck."""

from __future__ import annotations

from benchmarks.whole_pipeline.freshness import SINKS
from benchmarks.whole_pipeline.records import Bottleneck, Cost, DrainRun, Ratios, Report, Target

TARGET_PRODUCER = 150_000.0
TARGET_DRAIN_ONE = 20_000.0
TARGET_DRAIN_SHARE_OF_SLOWEST_SINK = 0.8
TARGET_ALL_PROCESSES_CPU_S_PER_100K = 5.0
TARGET_LATENCY_RTT_MS = 50.0
TARGET_LATENCY_SHARE_OF_0MS = 0.7
TARGET_FRESHNESS_P99_S = {"postgres_events": 1.0, "postgres_sessions": 1.0, "opensearch_events": 2.0}
TARGET_FRESHNESS_RATE = 5_000.0
CHART_TARGETS = {"producer target": TARGET_PRODUCER, "drain target": TARGET_DRAIN_ONE}
"""The throughput targets the chart draws as lines."""


def judge(report: Report) -> None:
    """Fill ``ratios``, ``targets``, ``cost`` and ``bottleneck`` from the measured sections.

    A figure measured in every repeat is judged on its median over the repeats
    (``report.spread``); the ratios describe the median repeat itself."""
    assert report.limits is not None and report.producer is not None, "judge() needs the limits and the producer"
    limits, producer = report.limits, report.producer
    one, two = report.drain.get("consumers_1"), report.drain.get("consumers_2")
    slowest = limits.slowest_sink.events_per_s
    rate1 = one.events_per_s if one is not None else 0.0
    rate2 = two.events_per_s if two is not None else None
    p99 = {sink: _median(report, f"freshness_p99_{sink}_s") for sink in SINKS}
    latency_key = f"{TARGET_LATENCY_RTT_MS:g}ms"
    latency_share = report.latency.ratio_to_0ms.get(latency_key) if report.latency is not None else None
    latency_note = ""
    if report.latency is not None:
        latency_note = f"(in flight {report.latency.in_flight}, {report.latency.events:,} events)"
    ratios = Ratios(
        producer_vs_target=_ratio(producer.events_per_s, TARGET_PRODUCER),
        drain1_vs_slowest_sink_limit=_ratio(rate1, slowest),
        drain1_active_vs_slowest_sink_limit=_ratio(one.active_events_per_s if one else None, slowest),
        drain2_vs_slowest_sink_limit=_ratio(rate2, slowest),
        drain2_vs_drain1=_ratio(rate2, rate1),
        postgres_limit_vs_opensearch_limit=_ratio(
            limits.postgres_copy.events_per_s, limits.opensearch_bulk.events_per_s
        ),
        drain1_vs_kafka_consume_limit=_ratio(rate1, limits.kafka_consume.events_per_s),
        drain1_vs_decode_limit=_ratio(rate1, limits.decode.events_per_s),
        drain1_vs_postgres_copy_limit=_ratio(rate1, limits.postgres_copy.events_per_s),
        drain1_vs_opensearch_bulk_limit=_ratio(rate1, limits.opensearch_bulk.events_per_s),
        freshness_p99_postgres_events_vs_target=_ratio(
            p99.get("postgres_events"), TARGET_FRESHNESS_P99_S["postgres_events"]
        ),
        freshness_p99_postgres_sessions_vs_target=_ratio(
            p99.get("postgres_sessions"), TARGET_FRESHNESS_P99_S["postgres_sessions"]
        ),
        freshness_p99_opensearch_events_vs_target=_ratio(
            p99.get("opensearch_events"), TARGET_FRESHNESS_P99_S["opensearch_events"]
        ),
        latency_50ms_vs_0ms=latency_share,
    )
    report.ratios = ratios

    targets = [
        _target("producer events/s", producer.events_per_s, ">=", TARGET_PRODUCER, "events/s"),
        _target(
            "drain events/s, 1 consumer",
            _median(report, "drain1_events_per_s", rate1),
            ">=",
            TARGET_DRAIN_ONE,
            "events/s",
        ),
        _target(
            "drain, 1 consumer, share of the slowest sink limit",
            _median(report, "drain1_vs_slowest_sink_limit", ratios.drain1_vs_slowest_sink_limit),
            ">=",
            TARGET_DRAIN_SHARE_OF_SLOWEST_SINK,
            "ratio",
        ),
        _target(
            "CPU-s per 100k events, all processes, drain by 1 consumer",
            _median(
                report,
                "drain1_all_processes_cpu_s_per_100k_events",
                one.all_processes_cpu_s_per_100k_events if one else None,
            ),
            "<=",
            TARGET_ALL_PROCESSES_CPU_S_PER_100K,
            "CPU-s",
        ),
        _target(
            f"drain at {TARGET_LATENCY_RTT_MS:g} ms added round-trip time, share of 0 ms",
            latency_share,
            ">=",
            TARGET_LATENCY_SHARE_OF_0MS,
            "ratio",
            latency_note,
        ),
    ]
    rate = report.freshness.rate_requested if report.freshness is not None else None
    for sink in SINKS:
        note = "" if rate == TARGET_FRESHNESS_RATE else f" (measured at {rate:g} events/s, target is at 5,000)"
        if sink == "opensearch_events" and report.freshness is not None:
            note += f" (refresh_interval {report.freshness.opensearch_refresh_interval})"
        targets.append(_target(f"freshness p99, {sink}", p99.get(sink), "<=", TARGET_FRESHNESS_P99_S[sink], "s", note))
    report.targets = targets

    report.cost = Cost(
        all_processes_cpu_s_per_100k_events_drain1=one.all_processes_cpu_s_per_100k_events if one else None,
        consumer_cpu_s_per_100k_events=one.cpu_s_per_100k_events if one else None,
        consumer_peak_rss_mib=one.peak_rss_mib_max if one else None,
        two_consumers_cpu_s_per_100k_events=two.cpu_s_per_100k_events if two else None,
        two_consumers_peak_rss_mib_max=two.peak_rss_mib_max if two else None,
        live_consumer_cpu_s_per_100k_events=report.freshness.consumer.cpu_s_per_100k_events
        if report.freshness is not None
        else None,
        producer_cpu_s_per_100k_events=producer.cpu_s_per_100k_events,
        service_cpu_s_per_100k_events_drain1=one.service_cpu_s_per_100k_events if one else None,
    )

    shares = one.stage_share_pct if one else {}
    work = {k: v for k, v in shares.items() if k != "poll"}
    if one is not None and work:
        stage = max(work, key=work.__getitem__)
        report.bottleneck = Bottleneck(
            largest_stage_1_consumer=stage,
            share_pct=work[stage],
            stage_share_pct=shares,
            machine_busy_cores_drain1=one.machine_busy_cores,
            service_cpu_s_per_100k_events=one.service_cpu_s_per_100k_events,
            reading=_bottleneck_text(one, two, report.machine.cores or 1, stage),
        )


def _bottleneck_text(one: DrainRun, two: DrainRun | None, cores: int, stage: str) -> str:
    busy = one.machine_busy_cores or 0
    parts = [
        f"with one consumer the {stage} stage takes the largest share of its time "
        f"({one.stage_share_pct.get(stage, 0):.0f}%)"
    ]
    cpu = one.attributable_cpu_s_per_100k_events
    if cpu and one.cpu_ceiling_events_per_s:
        biggest = max(cpu, key=cpu.__getitem__)
        parts.append(
            f"per 100k events it costs {sum(cpu.values()):.1f} CPU-s that can be attributed "
            f"({', '.join(f'{k} {v:.1f}' for k, v in cpu.items())}; largest: {biggest}), so {cores} cores "
            f"cap it near {one.cpu_ceiling_events_per_s:,.0f} events/s even with nothing else running"
        )
    if busy >= 0.85 * cores:
        parts.append(
            f"the machine was CPU-bound during the drain ({busy:.2f} of {cores} cores busy, other users' work included)"
        )
    else:
        parts.append(f"the machine had idle CPU during the drain ({busy:.2f} of {cores} cores busy)")
    scaling = _ratio(two.events_per_s if two else None, one.events_per_s)
    if scaling is not None:
        parts.append(f"a second consumer process changed the rate x{scaling:.2f}")
    return "; ".join(parts)


def _median(report: Report, figure: str, fallback: float | None = None) -> float | None:
    """The figure's median over the repeats, or ``fallback`` when it was not repeated."""
    spread = report.spread.get(figure)
    return spread.median if spread is not None else fallback


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def _target(name: str, value: float | None, op: str, target: float, unit: str, note: str = "") -> Target:
    if value is None:
        verdict = "n/a"
    else:
        verdict = "PASS" if (value >= target if op == ">=" else value <= target) else "MISS"
    return Target(name=name, measured=value, op=op, target=target, unit=unit, result=verdict, note=note.strip())
