"""The report as the human-readable table the benchmark prints at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from benchmarks.whole_pipeline.records import LIMIT_LABELS, Freshness, Latency, Report
from pipeline.jobs.consume import STAGES


def print_report(report: Report, out: TextIO = sys.stdout) -> None:
    """Print ``report`` (a finished one: every section filled)."""

    def p(text: str = "") -> None:
        print(text, file=out)

    m, v, s, limits, prod = report.machine, report.versions, report.settings, report.limits, report.producer
    assert s is not None and limits is not None and prod is not None and report.files is not None
    p()
    p(f"pipeline_bench ({report.mode}), {report.started_at} .. {report.finished_at}")
    p(
        f"machine: {m.cores} cores, {m.memory_gib} GiB, {m.cpu_model}; load average before "
        f"{load_text(m.load_average_before)}, after {load_text(m.load_average_after or [])}"
    )
    p(
        f"versions: {v.python}, Kafka {v.kafka}, PostgreSQL {v.postgresql}, OpenSearch {v.opensearch}, "
        f"librdkafka {v.librdkafka}"
    )
    p(
        f"settings: {s.events:,} events backlog, {s.partitions} partitions, "
        f"consumer batch {s.consumer_batch_size:,}, "
        f"freshness {s.freshness_rate:g} events/s for {s.freshness_seconds:g} s (warm-up "
        f"{s.freshness_warmup_s:g}..{s.freshness_max_warmup_s:g} s)"
    )
    p()
    slowest = limits.slowest_sink.events_per_s
    p(f"{'stage':44} {'events/s':>10} {'vs slowest':>10} {'CPU s/100k':>10} {'peak RSS':>9}")
    p(f"{'':44} {'':>10} {'sink limit':>10} {'events':>10} {'MiB':>9}")
    p("-" * 87)
    for key, limit in limits.each().items():
        label = f"limit: {LIMIT_LABELS[key]}"
        p(f"{label:44} {limit.events_per_s:>10,.0f} {limit.events_per_s / slowest:>10.2f}")
    p(
        f"{'producer: pipeline produce (CLI line)':44} {prod.events_per_s:>10,.0f} {'':>10} "
        f"{prod.cpu_s_per_100k_events or 0:>10.2f} {prod.process.max_rss_mib:>9.0f}"
    )
    for run in report.drain.values():
        label = f"drain: pipeline consume --drain x{run.consumers}"
        p(
            f"{label:44} {run.events_per_s:>10,.0f} {run.events_per_s / slowest:>10.2f} "
            f"{run.cpu_s_per_100k_events or 0:>10.2f} {run.peak_rss_mib_max:>9.0f}"
        )
        exit_rate = run.exit_events_per_s
        p(f"{'  until the last process exited':44} {exit_rate:>10,.0f} {exit_rate / slowest:>10.2f}")
        if run.active_events_per_s:
            p(
                f"{'  while batches flow (ingested_at span)':44} {run.active_events_per_s:>10,.0f} "
                f"{run.active_events_per_s / slowest:>10.2f}"
            )
    p(f"(slowest sink limit: {limits.slowest_sink.name}, {slowest:,.0f} events/s)")
    p()
    p("per-stage seconds of the drain (from --stats-json; events/s if that stage were alone):")
    p(f"  {'run':22} " + " ".join(f"{st:>17}" for st in STAGES))
    for run in report.drain.values():
        for proc in run.processes:
            cells = []
            for st in STAGES:
                sec = float(proc.stage_seconds.get(st, 0.0))
                rate = proc.stage_events_per_s.get(st)
                cells.append(f"{sec:7.1f}s {rate:>8,.0f}/s" if rate else f"{sec:7.1f}s {'':>10}")
            p(f"  {proc.name:22} " + " ".join(f"{c:>17}" for c in cells))
    p(
        "CPU-s per 100k events that belong to this run (consumer rusage, PostgreSQL backends of its database, "
        "OpenSearch operations on its indices):"
    )
    for run in report.drain.values():
        cpu = run.attributable_cpu_s_per_100k_events
        ceiling = run.cpu_ceiling_events_per_s
        limit_text = f" -> {m.cores}-core ceiling {ceiling:,.0f} events/s" if ceiling else ""
        p(
            f"  x{run.consumers}: "
            + ", ".join(f"{k} {val:.2f}" for k, val in cpu.items())
            + f"; total {sum(cpu.values()):.2f}{limit_text}"
        )
    p("machine CPU during the drains (cores busy; CPU-s per 100k events of each service of this stack):")
    for run in report.drain.values():
        svc = ", ".join(f"{k} {val:.2f}" for k, val in run.service_cpu_s_per_100k_events.items())
        written = sum(pr.sessions_written for pr in run.processes)
        busy = f"{run.machine_busy_cores} of {m.cores} cores busy"
        p(f"  x{run.consumers}: {busy}; {svc}; session rows written {written:,}")
    p()
    if report.freshness is not None:
        _freshness(report.freshness, p)
    p()
    if report.latency is not None:
        _latency(report.latency, p)
        p()
    if report.spread:
        _spread(report, p)
        p()
    p(f"{'target':64} {'measured':>12} {'target':>12} {'result':>6}")
    for t in report.targets:
        if t.measured is None:
            measured = "n/a"
        else:
            measured = f"{t.measured:,.0f}" if t.unit == "events/s" else f"{t.measured:.3f}"
        target = f"{t.op} {t.target:,.0f}" if t.unit == "events/s" else f"{t.op} {t.target:g}"
        p(f"{t.name:64} {measured:>12} {target:>12} {t.result:>6}" + (f"  {t.note}" if t.note else ""))
    one = report.drain.get("consumers_1")
    if one is not None and any(t.result == "MISS" for t in report.targets[1:3]):
        p(
            "  drain MISS, where the one consumer's time went: "
            + ", ".join(f"{k} {val:.0f}%" for k, val in one.stage_share_pct.items())
        )
    if report.bottleneck is not None:
        p(f"bottleneck: {report.bottleneck.reading}")
    for note in report.notes:
        p(f"note: {note}")
    p()
    p(f"JSON: {report.files.json}")
    skipped = report.files.chart_skipped
    p(f"chart: {report.files.chart or (skipped if isinstance(skipped, str) else None)}")


def _freshness(fresh: Freshness, p: Callable[..., None]) -> None:
    sent = fresh.window_send_rate or 0.0
    p(f"freshness: `{fresh.producer.command}`")
    state = (
        f"consumer caught up, lag {fresh.lag_when_window_started or 0:,}"
        if fresh.caught_up
        else "consumer NOT caught up"
    )
    p(
        f"  measured window {fresh.window_s:g} s at {sent:,.0f} events/s sent, starting "
        f"{fresh.window_starts_after_s:g} s after the first message ({state}); "
        f"{fresh.samples:,} sampled events (every {fresh.sample_every}-th), polled every "
        f"{fresh.tick_s * 1000:.0f} ms:"
    )
    columns = " ".join(f"{name:>8}" for name in ("p50", "p95", "p99", "max"))
    p(f"  {'sink':20} {columns} {'never seen':>11}  {'p50 by third of the window':>28}")
    for sink, f in fresh.sinks.items():
        thirds = " ".join("n/a" if x is None else f"{x:.3f}" for x in f.p50_by_third_s)
        p(
            f"  {sink:20} "
            + " ".join(_seconds(x) for x in (f.p50_s, f.p95_s, f.p99_s, f.max_s))
            + f" {f.never_seen:>11,}  {thirds:>28}"
        )
    p(
        f"  (OpenSearch refresh_interval is {fresh.opensearch_refresh_interval}: documents become "
        "searchable only at the next refresh)"
    )
    c, o = fresh.consumer, fresh.measurement_overhead
    p(
        f"  live consumer: {c.cpu_s_per_100k_events} CPU s per 100k events, peak RSS "
        f"{c.process.max_rss_mib:.0f} MiB; measurement overhead: {o.benchmark_process_cpu_s} CPU-s here, "
        f"{o.opensearch_search_time_s} s of OpenSearch query time"
    )


def _latency(latency: Latency, p: Callable[..., None]) -> None:
    p(
        f"round trips: one consumer (in flight {latency.in_flight}) drains {latency.events:,} events through "
        "delay proxies (rounds interleaved):"
    )
    for key, spread in latency.events_per_s.items():
        ratio = latency.ratio_to_0ms.get(key)
        low_high = f"{_rate(spread.low)}..{_rate(spread.high)}"
        share = "n/a" if ratio is None else f"{ratio:.2f}"
        p(f"  +{key:>6} round trip: median {_rate(spread.median)} events/s ({low_high}), {share} of 0 ms")
    last = latency.rounds[-1] if latency.rounds else None
    if last is not None and last.batches:
        per_batch = ", ".join(f"{name} {n / last.batches:.1f}" for name, n in last.client_turns.items())
        p(f"  round trips waited for per batch (last round, {last.batches} batches): {per_batch}")


def _spread(report: Report, p: Callable[..., None]) -> None:
    repeats = report.settings.repeat if report.settings is not None else 1
    p(f"over the {repeats} repeat(s): median (lowest..highest); the targets are judged on the medians")
    for name, spread in report.spread.items():
        if spread.median is None:
            continue
        p(f"  {name:58} {spread.median:>12,.3f} ({spread.low:,.3f}..{spread.high:,.3f})")


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return f"{'n/a':>8}" if value is None else f"{value:>7.3f}s"


def load_text(load: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)
