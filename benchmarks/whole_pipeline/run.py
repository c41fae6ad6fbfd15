"""One benchmark run in progress: its options, its private world, the processes it started, its report."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from benchmarks.whole_pipeline.procs import NOISY_LOAD, Child, ChildFailed, Snapshot, phase_usage, settle, spawn
from benchmarks.whole_pipeline.records import FreshnessPlot, PhaseUsage, Report
from pipeline.jobs.consume import ConsumeStats
from tests.support.world import IsolatedWorld

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCE_LINE = re.compile(
    r"produce: sent (\d+), delivered (\d+), failed (\d+) in ([\d.]+) s \(([\d,]+) events/s\), seed (-?\d+)"
)
"""The final line of ``pipeline produce``: its own count and rate."""


@dataclass(frozen=True)
class Options:
    events: int
    freshness_rate: float
    freshness_seconds: float
    freshness_warmup: float
    freshness_max_warmup: float
    out: Path
    outputs: Path | None
    seed: int
    keep_logs: bool
    ci: bool
    repeat: int
    latency_events: int
    latency_ms: list[float]
    settle_max_s: float


class Run:
    """What the phases share: the options, the world, the log directory, the children and the report."""

    def __init__(self, options: Options, world: IsolatedWorld, report: Report) -> None:
        self.options = options
        self.world = world
        self.report = report
        self.logs = world.private_dir
        self.children: list[Child] = []
        self.backlog = 0
        """Events delivered by the backlog producer (what the limits and drains process)."""
        self.plots: list[FreshnessPlot] = []
        """Each live run's data for the chart, in the order they ran."""
        self.plot = FreshnessPlot()
        """The chart's: the median live run's."""
        self.repeat_label = ""
        """Appended to the names of the phases of the repeat in progress (``_r2``)."""

    def spawn(self, name: str, command: list[str]) -> Child:
        """Start a pipeline process; its output goes to a log named after it (kept with ``--keep-logs``)."""
        log_file = self.logs / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".log")
        child = spawn(name, command, log_file, cwd=REPO_ROOT)
        self.children.append(child)
        return child

    def start_phase(self) -> Snapshot:
        """Wait for the machine to settle (:func:`procs.settle`), then take the phase's first snapshot."""
        waited = settle(lambda: os.getloadavg()[0], max_wait_s=self.options.settle_max_s)
        return dataclasses.replace(Snapshot.take(), waited_s=waited)

    def phase(self, name: str, before: Snapshot) -> PhaseUsage:
        """Record the machine's use since ``before`` as phase ``name``."""
        usage = phase_usage(before, Snapshot.take())
        name += self.repeat_label
        self.report.phases[name] = usage
        if usage.noisy:
            self.note(
                f"phase {name} is noisy: the 1-minute load average was {usage.load_average_before[0]:.2f} "
                f"before it (above {NOISY_LOAD}); repeat it on a quieter machine before comparing its figures"
            )
        return usage

    def note(self, text: str) -> None:
        self.report.notes.append(text)


class ProduceLine:
    """The figures of ``pipeline produce``'s final line."""

    def __init__(self, match: re.Match[str]) -> None:
        self.text = match.group(0)
        self.delivered = int(match.group(2))
        self.failed = int(match.group(3))
        self.seconds = float(match.group(4))
        self.events_per_s = float(match.group(5).replace(",", ""))


def produce_line(child: Child) -> ProduceLine:
    matches = list(PRODUCE_LINE.finditer(child.log.read_text(errors="replace")))
    if not matches:
        raise ChildFailed(f"{child.name}: no final `produce:` line; last output:\n{child.log_tail()}")
    return ProduceLine(matches[-1])


def read_stats(path: Path) -> ConsumeStats | None:
    """The counters a consumer wrote with ``--stats-json``, read into the consumer's own record
    (None if it wrote none: it was killed)."""
    return msgspec.json.decode(path.read_bytes(), type=ConsumeStats) if path.exists() else None


def per_100k(cpu_s: float, events: int) -> float | None:
    """CPU seconds per 100,000 events (None without events)."""
    return round(cpu_s / events * 1e5, 3) if events else None
