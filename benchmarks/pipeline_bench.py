"""The whole pipeline's performance in one run on the local stack: limits, producer, drain, freshness, cost.

One command measures, on the real services and through the real CLI, against a private
topic, database and index prefix (``tests/support/world.py``; nothing of production or of
other users is touched, and everything created is removed, also on failure):

1. Limits: raw Kafka consume, decode+validate, PostgreSQL binary COPY and OpenSearch bulk
   rates of the same messages (``benchmarks/whole_pipeline/limits.py``).
2. Producer: ``pipeline produce --events N`` at full speed, the real CLI in a subprocess;
   its own final line (generation + every delivery confirmed) gives the rate. The same
   run is the backlog for step 3.
3. Drain: ``pipeline consume --drain --stats-json F`` (real CLI subprocess) empties the
   backlog into both sinks with 1 consumer, then, on fresh sinks (new database, index
   prefix and group, same topic), with 2 consumer processes in one group.
4. Freshness: ``pipeline produce --rate R --duration S`` while ``pipeline consume`` runs;
   send-to-visible delay per sink (``benchmarks/whole_pipeline/freshness.py`` says how and why).
5. Cost: CPU seconds per 100,000 events of every pipeline process (the kernel's ``rusage``
   at exit) and its peak RSS (``VmHWM``, followed while it runs), and of every service
   process (``/proc/PID/stat``); see ``benchmarks/whole_pipeline/procs.py``.
6. Round trips: one consumer drains a small backlog of its own topic through delay
   proxies at 0 ms and at each ``--latency-rtt-ms`` (``benchmarks/whole_pipeline/roundtrips.py``).

Steps 3 and 4 run ``--repeat`` times (3 by default, 1 with ``--ci``): the drains by one and
by two consumers alternate, each on fresh sinks, so that a drift of the shared machine's
load spreads over both alike; then the live runs, which add their events to the topic the
drains read; the round trips interleave their own rounds. Each phase first waits (up to
two minutes; not with ``--ci``) for the 1-minute load average to fall to 1.5. The
report gives each figure's median and spread over the repeats and judges the medians.

It prints a table and writes ``pipeline-bench-<UTC time>.json`` (machine, versions,
settings, every figure and ratio, targets with PASS/MISS) and a ``.png`` chart next to
it. Targets are compared, never asserted: the exit code says only whether the run worked.
The parts live in ``benchmarks/whole_pipeline/``: one module per phase, the report's
typed records (``records.py``), the judge, the table and the chart.

Usage::

    .venv/bin/python -m benchmarks.pipeline_bench                       # 1,000,000 events, 5,000/s x 60 s
    .venv/bin/python -m benchmarks.pipeline_bench --events 20000 --freshness-seconds 5
    .venv/bin/python -m benchmarks.pipeline_bench --ci                  # tiny: 20,000 events, 1,000/s x 3 s
    .venv/bin/python -m benchmarks.pipeline_bench --keep-logs --out DIR # also keep the processes' logs

The machine is shared (2 cores): the load average before and after, and the machine's
CPU use during each phase, are recorded so a figure can be judged against the load it
was measured under.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path

from benchmarks.latency.routes import RouteError, parse_latencies
from benchmarks.whole_pipeline import chart
from benchmarks.whole_pipeline.backlog import measure_limits, produce_backlog
from benchmarks.whole_pipeline.drain import measure_drain
from benchmarks.whole_pipeline.environment import machine_info, versions
from benchmarks.whole_pipeline.freshness import SINKS
from benchmarks.whole_pipeline.judge import (
    CHART_TARGETS,
    TARGET_ALL_PROCESSES_CPU_S_PER_100K,
    TARGET_FRESHNESS_P99_S,
    TARGET_FRESHNESS_RATE,
    judge,
)
from benchmarks.whole_pipeline.live import FRESHNESS_SAMPLES_PER_S, measure_freshness
from benchmarks.whole_pipeline.procs import SETTLE_MAX_S, ChildFailed, stop_all
from benchmarks.whole_pipeline.records import Files, Report, Spread, median_of
from benchmarks.whole_pipeline.records import Settings as BenchSettings
from benchmarks.whole_pipeline.roundtrips import measure_latency
from benchmarks.whole_pipeline.run import REPO_ROOT, Options, Run
from benchmarks.whole_pipeline.table import load_text, print_report
from pipeline.config.settings import Settings, find_local_outputs, read_outputs_file
from pipeline.jobs.consume import ConsumeOptions
from pipeline.kafka.producer import PRODUCER_DEFAULTS
from pipeline.sinks.opensearch.index import DEFAULT_MAX_BYTES, DEFAULT_MAX_DOCS
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL
from tests.support.world import IsolatedWorld

log = logging.getLogger("pipeline_bench")
UTC = dt.UTC
CI_DEFAULTS = {
    "events": 20_000,
    "freshness_rate": 1_000.0,
    "freshness_seconds": 3.0,
    "freshness_warmup": 1.0,
    "freshness_max_warmup": 6.0,
    "repeat": 1,
    "latency_events": 5_000,
    "settle_max_s": 0.0,
}
FULL_DEFAULTS = {
    "events": 1_000_000,
    "freshness_rate": TARGET_FRESHNESS_RATE,
    "freshness_seconds": 60.0,
    "freshness_warmup": 5.0,
    "freshness_max_warmup": 40.0,
    "repeat": 3,
    "latency_events": 100_000,
    "settle_max_s": SETTLE_MAX_S,
}


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, help="backlog size for the limits and the drains (default 1,000,000)")
    parser.add_argument("--freshness-rate", type=float, help="events/s during the freshness run (default 5,000)")
    parser.add_argument("--freshness-seconds", type=float, help="length of the freshness run (default 60)")
    parser.add_argument(
        "--freshness-warmup",
        type=float,
        help="the freshness window starts at least this many seconds after the first message (default 5; --ci 1)",
    )
    parser.add_argument(
        "--freshness-max-warmup",
        type=float,
        help="...and at the latest this many, caught up or not (default 40; --ci 6)",
    )
    parser.add_argument(
        "--settle-max-s",
        type=float,
        help="longest wait before each phase for the 1-minute load to fall to 1.5 (default 120; --ci 0)",
    )
    parser.add_argument("--repeat", type=int, help="repeats of the drains and the live run (default 3; --ci 1)")
    parser.add_argument(
        "--latency-events", type=int, help="backlog of the round-trip rounds (default 100,000; --ci 5,000)"
    )
    parser.add_argument(
        "--latency-ms",
        default="50",
        help="added round-trip times of the round-trip rounds, ms, comma-separated; 0 is always run (default 50)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "bench-results",
        help="directory for the JSON and PNG (default bench-results/, git-ignored)",
    )
    parser.add_argument("--outputs", type=Path, help="stack-outputs file of the stack (default: the local stack's)")
    parser.add_argument("--seed", type=int, default=20_261_130, help="producer seed (same seed = same events)")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="copy the pipeline processes' logs and stats files next to the JSON (<stem>-logs/)",
    )
    parser.add_argument(
        "--ci",
        action="store_true",
        help="tiny run for CI: 20,000 events, 1,000 events/s for 3 s (explicit options still win)",
    )
    args = parser.parse_args(argv)
    for key, value in (CI_DEFAULTS if args.ci else FULL_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.events < 1 or args.freshness_rate <= 0 or args.freshness_seconds <= 0 or args.freshness_warmup < 0:
        parser.error("--events, --freshness-rate and --freshness-seconds must be positive")
    if args.repeat < 1 or args.latency_events < 1:
        parser.error("--repeat and --latency-events must be at least 1")
    try:
        args.latency_ms = [x for x in parse_latencies(args.latency_ms) if x]
    except RouteError as exc:
        parser.error(str(exc))
    return Options(**vars(args))


def bench_settings(options: Options, world: IsolatedWorld, outputs_path: Path) -> BenchSettings:
    """What the run was asked to do and the pipeline's settings that shape the figures."""
    return BenchSettings(
        events=options.events,
        seed=options.seed,
        freshness_rate=options.freshness_rate,
        freshness_seconds=options.freshness_seconds,
        freshness_warmup_s=options.freshness_warmup,
        freshness_max_warmup_s=options.freshness_max_warmup,
        freshness_samples_per_s=FRESHNESS_SAMPLES_PER_S,
        topic=world.topics.events,
        partitions=world.topics.partitions,
        consumer_batch_size=ConsumeOptions.batch_size,
        consumer_batch_wait_s=ConsumeOptions.batch_wait_s,
        producer_config={k: v for k, v in PRODUCER_DEFAULTS.items() if k != "log_level"},
        opensearch_refresh_interval=DEFAULT_REFRESH_INTERVAL,
        opensearch_max_docs_per_request=DEFAULT_MAX_DOCS,
        opensearch_max_bytes_per_request=DEFAULT_MAX_BYTES,
        repeat=options.repeat,
        latency_events=options.latency_events,
        latency_rtt_ms=options.latency_ms,
        stack_outputs=str(outputs_path),
    )


def measure(run: Run) -> None:
    """The phases, in order: the backlog and its limits; the drains, each repeat a drain by one
    consumer and then, on fresh sinks, by two; the live runs on the last drain's sinks (holding
    the backlog: a realistic state); then the round trips. The live runs come after every drain
    because they add their events to the topic the drains read. Each figure's median repeat
    becomes the report's."""
    world, repeats = run.world, run.options.repeat
    sinks = world.new_pipeline("drain1")
    produce_backlog(run, sinks)
    measure_limits(run, sinks)
    for repeat in range(1, repeats + 1):
        run.repeat_label = f"_r{repeat}" if repeats > 1 else ""
        if repeat > 1:
            sinks = world.new_pipeline(f"drain1-r{repeat}")
        measure_drain(run, sinks, consumers=1)
        world.drop_pipeline(sinks)
        sinks = world.new_pipeline(f"drain2-r{repeat}")
        measure_drain(run, sinks, consumers=2)
        if repeat < repeats:
            world.drop_pipeline(sinks)
    for repeat in range(1, repeats + 1):
        run.repeat_label = f"_r{repeat}" if repeats > 1 else ""
        measure_freshness(run, sinks)
    world.drop_pipeline(sinks)
    run.repeat_label = ""
    measure_latency(run)
    choose_medians(run)


def choose_medians(run: Run) -> None:
    """Name each phase's median repeat the report's own and record every headline figure's spread."""
    report = run.report
    for key, repeats in report.drain_repeats.items():
        report.drain[key] = median_of(repeats, lambda r: r.events_per_s)
    if report.freshness_repeats:
        chosen = median_of(report.freshness_repeats, lambda f: f.sinks["opensearch_events"].p99_s or 0.0)
        report.freshness = chosen
        run.plot = run.plots[report.freshness_repeats.index(chosen)]
    report.spread = spreads(report)


def spreads(report: Report) -> dict[str, Spread]:
    out: dict[str, Spread] = {}
    slowest = report.limits.slowest_sink.events_per_s if report.limits is not None else None
    for key, repeats in report.drain_repeats.items():
        name = key.replace("consumers_", "drain")
        out[f"{name}_events_per_s"] = Spread.of([r.events_per_s for r in repeats])
        if slowest:
            out[f"{name}_vs_slowest_sink_limit"] = Spread.of([round(r.events_per_s / slowest, 4) for r in repeats])
        out[f"{name}_all_processes_cpu_s_per_100k_events"] = Spread.of(
            [r.all_processes_cpu_s_per_100k_events for r in repeats]
        )
        out[f"{name}_consumer_cpu_s_per_100k_events"] = Spread.of([r.cpu_s_per_100k_events for r in repeats])
        for service in repeats[0].service_cpu_s_per_100k_events:
            out[f"{name}_{service}_cpu_s_per_100k_events"] = Spread.of(
                [r.service_cpu_s_per_100k_events.get(service) for r in repeats]
            )
    for sink in SINKS:
        out[f"freshness_p99_{sink}_s"] = Spread.of([f.sinks[sink].p99_s for f in report.freshness_repeats])
    return out


def _keep_logs(source: Path, target: Path) -> None:
    """Copy logs and stats files (never the outputs files: they hold credentials)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.suffix in (".log", ".json") and not path.name.startswith("stack-outputs"):
            shutil.copy(path, target / path.name)


def _raise_interrupt(signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not interrupt the cleanup
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("opensearch", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    outputs_path = options.outputs or find_local_outputs(REPO_ROOT)
    base_outputs = read_outputs_file(outputs_path)
    base = Settings.from_outputs(base_outputs, source=str(outputs_path))
    options.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(UTC)
    stem = f"pipeline-bench-{started:%Y%m%dT%H%M%SZ}"
    json_path, png_path = options.out / f"{stem}.json", options.out / f"{stem}.png"

    report = Report(
        mode="ci" if options.ci else "full",
        started_at=started.isoformat(timespec="seconds"),
        command=[sys.executable, *sys.argv],
        machine=machine_info(),
        versions=versions(base),
    )
    log.info("load average before: %s", load_text(report.machine.load_average_before))
    world = IsolatedWorld(base_outputs, base, tag="b", partitions=None, strict=False)
    run: Run | None = None
    failure: BaseException | None = None
    try:
        with world:
            run = Run(options, world, report)
            report.settings = bench_settings(options, world, outputs_path)
            try:
                measure(run)
            finally:
                stop_all(run.children)
                if options.keep_logs:
                    _keep_logs(world.private_dir, options.out / f"{stem}-logs")
    except BaseException as exc:  # report, clean up (done by the world), exit non-zero
        failure = exc
    report.machine.load_average_after = list(os.getloadavg())
    report.finished_at = dt.datetime.now(UTC).isoformat(timespec="seconds")
    report.notes.extend(world.cleanup_errors)
    if failure is not None:
        # Keep what was measured: a partial report, named so that nobody takes it for a result.
        report.error = f"{type(failure).__name__}: {str(failure)[:2000]}"
        partial = options.out / f"{stem}.failed.json"
        partial.write_text(report.to_json())
        log.error(
            "benchmark failed: %s: %s (partial report: %s)",
            type(failure).__name__,
            str(failure).splitlines()[0] if str(failure) else "",
            partial,
        )
        if isinstance(failure, ChildFailed):
            print(str(failure), file=sys.stderr)
        elif not isinstance(failure, KeyboardInterrupt):
            traceback.print_exception(failure)
        return 130 if isinstance(failure, KeyboardInterrupt) else 1

    judge(report)
    report.files = Files(json=str(json_path), chart=None)
    title = (
        f"{stem}: {report.mode}, {options.events:,} events, {report.machine.cores} cores, "
        f"load {load_text(report.machine.load_average_before)} -> {load_text(report.machine.load_average_after)}"
    )
    assert run is not None
    skipped = chart.render(
        png_path, report, run.plot, CHART_TARGETS, TARGET_FRESHNESS_P99_S, TARGET_ALL_PROCESSES_CPU_S_PER_100K, title
    )
    if skipped:
        report.files.chart_skipped = skipped
    else:
        report.files.chart = str(png_path)
    json_path.write_text(report.to_json())
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
