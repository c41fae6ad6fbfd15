"""The benchmark's PNG: throughput against the limits, CPU per event per process, and freshness.

Why these four panels: the first answers "how far is the pipeline from what the parts
could do, and which part is the ceiling" at a glance (limits and pipeline runs on one
axis, targets as lines); the second shows where the CPU of an event goes, process by
process, in each drain, against the target for all of them together; the third shows
the whole freshness distribution per sink as an empirical CDF, where p50/p99 and the
OpenSearch refresh steps are visible, which a table of percentiles hides; the fourth
shows every sample's delay over time with the send rate and the consumer's lag, so a
start-up backlog or a consumer falling behind is visible instead of being averaged into
a percentile. matplotlib is in the ``bench`` extra; without it the benchmark still
writes its JSON and says the chart was skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.whole_pipeline.records import LIMIT_LABELS, FreshnessPlot, Report

LIMIT_COLOR = "#8c8c8c"
PIPELINE_COLOR = "#1f77b4"
PRODUCER_COLOR = "#2ca02c"
PROCESS_COLORS = {"consumer": "#1f77b4", "kafka": "#7f7f7f", "postgresql": "#ff7f0e", "opensearch": "#2ca02c"}
SINK_COLORS = {"postgres_events": "#1f77b4", "postgres_sessions": "#ff7f0e", "opensearch_events": "#2ca02c"}


def render(
    path: Path,
    report: Report,
    plot: FreshnessPlot,
    targets: Mapping[str, float],
    freshness_target_s: Mapping[str, float],
    cpu_target: float,
    title: str,
) -> str | None:
    """Write the chart of ``report`` and the live run's ``plot``; returns None on success or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"

    fig, (top, cpu, middle, bottom) = plt.subplots(
        4, 1, figsize=(11, 18), gridspec_kw={"height_ratios": [1.1, 0.6, 1, 1]}
    )
    _throughput(top, bars_from(report), targets)
    _cpu(cpu, cpu_rows(report), cpu_target)
    _cdf(middle, plot.cdf, freshness_target_s)
    _timeline(bottom, plot, freshness_target_s)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the title above the first panel
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def _throughput(ax: Any, bars: Sequence[tuple[str, float, str]], targets: Mapping[str, float]) -> None:
    colors = {"limit": LIMIT_COLOR, "pipeline": PIPELINE_COLOR, "producer": PRODUCER_COLOR}
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    y = list(range(len(bars)))[::-1]
    ax.barh(y, values, color=[colors.get(b[2], PIPELINE_COLOR) for b in bars])
    ax.set_yticks(y, labels)
    ax.set_xscale("log")
    ax.set_xlabel("events per second (log scale)")
    for yi, value in zip(y, values, strict=True):
        ax.text(value, yi, f" {value:,.0f}", va="center", fontsize=8)
    for name, value in targets.items():
        ax.axvline(value, linestyle="--", color="#d62728", linewidth=1)
        ax.text(value, max(y, default=0) + 0.55, f" {name}", color="#d62728", fontsize=8, va="bottom")
    positive = [v for v in values if v > 0]
    ax.set_xlim(
        min(positive + list(targets.values())) / 2 if positive else 1, max(positive + list(targets.values()) + [1]) * 3
    )
    ax.set_title("throughput: limits (grey), producer (green), pipeline drain (blue); targets dashed")
    ax.grid(axis="x", which="both", alpha=0.3)


def _cpu(ax: Any, rows: Sequence[tuple[str, Mapping[str, float]]], target: float) -> None:
    processes = list(dict.fromkeys(name for _, parts in rows for name in parts))
    y = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for process in processes:
        widths = [parts.get(process, 0.0) for _, parts in rows]
        ax.barh(y, widths, left=left, label=process, color=PROCESS_COLORS.get(process))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for yi, total in zip(y, left, strict=True):
        ax.text(total, yi, f" {total:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, [label for label, _ in rows])
    ax.axvline(target, linestyle="--", color="#d62728", linewidth=1)
    ax.text(target, max(y, default=0) + 0.45, f" target <= {target:g}", color="#d62728", fontsize=8, va="bottom")
    ax.set_xlabel("CPU-seconds per 100,000 events")
    ax.set_title("cost per event, by process, in each drain (median repeat)")
    if rows:
        ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def cpu_rows(report: Report) -> list[tuple[str, dict[str, float]]]:
    """(label, {process: CPU-s per 100k events}) for each drain: the consumers, then every service."""
    out: list[tuple[str, dict[str, float]]] = []
    for run in report.drain.values():
        parts = {"consumer": run.cpu_s_per_100k_events or 0.0, **run.service_cpu_s_per_100k_events}
        plural = "s" if run.consumers > 1 else ""
        out.append((f"drain, {run.consumers} consumer{plural}", parts))
    return out


def _cdf(ax: Any, cdf: Mapping[str, Sequence[float]], targets: Mapping[str, float]) -> None:
    plotted = False
    for sink, values in cdf.items():
        if not values:
            continue
        n = len(values)
        ax.step(
            values,
            [(i + 1) / n for i in range(n)],
            where="post",
            label=f"{sink} (n={n:,})",
            color=SINK_COLORS.get(sink),
        )
        plotted = True
    for sink, target_s in targets.items():
        ax.axvline(target_s, linestyle="--", color=SINK_COLORS.get(sink, "#d62728"), linewidth=1)
    for target_s in sorted(set(targets.values())):
        sinks = ", ".join(sink for sink, t in targets.items() if t == target_s)
        ax.text(target_s, 0.02, f" p99 <= {target_s:g} s: {sinks}", color="#d62728", fontsize=8, rotation=90)
    for q in (0.5, 0.95, 0.99):
        ax.axhline(q, color="#cccccc", linewidth=0.8)
    ax.set_xlabel("seconds from send (Kafka CreateTime) to visible in the sink")
    ax.set_ylabel("fraction of sampled events")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(left=0)
    ax.set_title("freshness in the measured window: empirical CDF per sink")
    if plotted:
        ax.legend(loc="lower right")
    ax.grid(alpha=0.3)


def _timeline(ax: Any, plot: FreshnessPlot, targets: Mapping[str, float]) -> None:
    for sink, points in plot.timeline.items():
        if points:
            ax.scatter(
                [p[0] for p in points], [p[1] for p in points], s=3, alpha=0.5, label=sink, color=SINK_COLORS.get(sink)
            )
    window = plot.window
    if window:
        ax.axvspan(window[0], window[1], color="#e8f0fa", zorder=0, label="measured window")
    for sink, target_s in targets.items():
        ax.axhline(target_s, linestyle="--", color=SINK_COLORS.get(sink, "#d62728"), linewidth=1)
    ax.set_xlabel("send time, seconds from the first message of the load")
    ax.set_ylabel("seconds to visible")
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    rate, lag = plot.send_rate, plot.lag
    _series(twin, rate, "#7f7f7f", "send rate (messages/s, per 100 ms)")
    _series(twin, lag, "#9467bd", "consumer group lag (messages)")
    twin.set_ylabel("messages", color="#7f7f7f")
    # The producer's start-up burst would flatten everything else: scale to the steady part.
    rates = sorted(r[1] for r in rate)
    steady = rates[len(rates) // 2] if rates else 0.0
    top = max([n for _, n in lag] + [3 * steady, 1.0]) * 1.1
    twin.set_ylim(0, top)
    if rate or lag:
        twin.legend(loc="upper center", fontsize=8)
    ax.set_title("freshness over time: every sampled event, the send rate and the consumer's lag")
    if ax.has_data():
        ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.grid(alpha=0.3)


def _series(ax: Any, points: Sequence[tuple[float, float]], color: str, label: str) -> None:
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], color=color, linewidth=0.8, alpha=0.7, label=label)


def bars_from(report: Report) -> list[tuple[str, float, str]]:
    """(label, events/s, kind) for every throughput figure of a report."""
    out: list[tuple[str, float, str]] = []
    if report.limits is not None:
        for key, limit in report.limits.each().items():
            out.append((f"limit: {LIMIT_LABELS[key]}", limit.events_per_s, "limit"))
    if report.producer is not None and report.producer.events_per_s:
        out.append(("producer (pipeline produce)", report.producer.events_per_s, "producer"))
    for run in report.drain.values():
        if run.events_per_s:
            plural = "s" if run.consumers > 1 else ""
            out.append((f"drain, {run.consumers} consumer{plural}", run.events_per_s, "pipeline"))
    if report.latency is not None:
        for key, spread in report.latency.events_per_s.items():
            if spread.median:
                label = f"drain, 1 consumer, {report.latency.events:,} events, +{key} round trip"
                out.append((label, spread.median, "pipeline"))
    return out
