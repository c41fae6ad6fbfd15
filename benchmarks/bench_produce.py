"""What ``pipeline produce`` costs per event, in the producer and in the broker, variants side by side.

A variant is a label, the code (this tree, or a git revision exported to a temporary
directory) and librdkafka settings layered over the producer's defaults. Every run is a
fresh process running the produce job (the function behind ``pipeline produce``) on a
private topic of the local stack, with the same seed and end time, so every run sends the
same bytes. Runs are interleaved: each round runs every variant once, in an order rotated
from round to round, so a change in the machine's load hits all variants alike.

Figures per run, reported as medians over the rounds:

* events/s: the job's own rate, the one ``pipeline produce`` prints (from the first
  message to the last delivery confirmed);
* producer CPU-s per 100k events: the whole process (every thread) over the job, which
  includes the rate probe and the warm-up before the first message; and the main thread
  alone (generation plus the ``produce()`` calls; librdkafka compresses, encrypts and
  sends on threads of its own);
* broker CPU-s per 100k events: ``/proc/<pid>/stat`` of this stack's Kafka broker before
  and after the job (anything else using that broker meanwhile is counted too);
* wire bytes per event and events per request: librdkafka's own counts of bytes
  (before TLS) and requests sent to brokers per message sent, from its last
  statistics of the run. Bigger requests cost the broker less per event.

Ratios to the first variant are taken within each round, then the median: they are what
to trust on a busy machine, where absolute rates move with other people's work::

    .venv/bin/python -m benchmarks.bench_produce --events 300000 --rounds 5 \\
        --variant base@main --variant now
    .venv/bin/python -m benchmarks.bench_produce --variant lz4 \\
        --variant zstd:compression.type=zstd --variant none:compression.type=none
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
END_TIME = "2026-11-30T12:00:00+00:00"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the child: one run of the produce job ------------------------------------------------------
# Only the standard library and ``pipeline`` are imported here: the child may run another
# revision's ``pipeline`` (PYTHONPATH), which must not meet this tree's test kit.


def _process_cpu_s(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return total


def _child(spec: Mapping[str, Any]) -> dict[str, Any]:
    from pipeline.config.settings import load_settings
    from pipeline.jobs.produce import ProduceOptions, produce

    settings = load_settings(outputs_file=Path(spec["outputs"]))
    last_stats: dict[str, Any] = {}

    def on_stats(text: str) -> None:
        last_stats.clear()
        last_stats.update(json.loads(text))

    overrides: dict[str, object] = {**spec["overrides"], "statistics.interval.ms": 500, "stats_cb": on_stats}
    options = ProduceOptions(
        topic=spec["topic"],
        seed=spec["seed"],
        events=spec["events"],
        end_time=dt.datetime.fromisoformat(spec["end_time"]),
        producer_overrides=overrides,
    )
    broker_pids = spec["broker_pids"]
    broker0 = _process_cpu_s(broker_pids)
    cpu0, main0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    result = produce(settings.kafka, options)
    cpu, main, wall = time.process_time() - cpu0, time.thread_time() - main0, time.perf_counter() - wall0
    broker1 = _process_cpu_s(broker_pids)
    tx_bytes, tx_msgs, requests = (last_stats.get(k, 0) for k in ("tx_bytes", "txmsgs", "tx"))
    return {
        "delivered": result.delivered,
        "events_per_s": result.rate,
        "job_wall_s": wall,
        "cpu_s": cpu,
        "main_thread_cpu_s": main,
        "broker_cpu_s": None if broker0 is None or broker1 is None else broker1 - broker0,
        "wire_bytes_per_event": tx_bytes / tx_msgs if tx_msgs else None,
        "events_per_request": tx_msgs / requests if requests else None,
    }


# --- the parent: variants, rounds, figures ---------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    revision: str | None
    """A git revision to run instead of this tree's code (None: this tree)."""
    overrides: dict[str, object] = field(default_factory=dict)


def parse_variant(text: str) -> Variant:
    """``LABEL[@REV][:key=value,key=value]``."""
    head, _, settings = text.partition(":")
    label, _, revision = head.partition("@")
    overrides: dict[str, object] = {}
    for pair in filter(None, settings.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{pair!r} is not key=value")
        overrides[key.strip()] = _setting_value(value.strip())
    if not label:
        raise argparse.ArgumentTypeError(f"{text!r} has no label")
    return Variant(label, revision or None, overrides)


def _setting_value(text: str) -> object:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        return text


def export_revision(revision: str, into: Path) -> Path:
    """``pipeline/`` of ``revision``, written under ``into`` (the child puts it first on its path)."""
    into.mkdir(parents=True)
    archive = into / "src.tar"
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", f"--output={archive}", revision, "pipeline"],
        check=True,
    )
    target = into / "src"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def broker_pids() -> list[int]:
    """This stack's Kafka broker processes (its command line names this stack's server.properties)."""
    from devstack.layout import load_layout

    marker = str(load_layout().service_dir("kafka") / "server.properties").encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker in cmdline and b"kafka.Kafka" in cmdline:
            found.append(int(entry))
    return found


def run_once(variant: Variant, source: Path, spec: Mapping[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps({**spec, "overrides": variant.overrides})],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{variant.label}: the produce run failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["delivered"] != spec["events"]:
        raise RuntimeError(f"{variant.label}: delivered {figures['delivered']} of {spec['events']}")
    return figures


def per_100k(seconds: float | None, events: int) -> float | None:
    return None if seconds is None else seconds / events * 100_000


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(variants: Sequence[Variant], runs: Mapping[str, list[dict[str, Any]]], events: int) -> None:
    def figures(run: dict[str, Any]) -> dict[str, float | None]:
        return {
            "events/s": run["events_per_s"],
            "cpu": per_100k(run["cpu_s"], events),
            "main": per_100k(run["main_thread_cpu_s"], events),
            "broker": per_100k(run["broker_cpu_s"], events),
            "bytes": run["wire_bytes_per_event"],
            "per req": run.get("events_per_request"),
        }

    print(
        f"\n{'variant':24} {'events/s':>9} {'producer':>9} {'main thr':>9} {'broker':>8} {'bytes/ev':>9} {'ev/req':>7}"
    )
    print(f"{'':24} {'':>9} {'CPU-s/100k events':>28}")
    for v in variants:
        rows = [figures(r) for r in runs[v.label]]
        med = {k: _median([r[k] for r in rows]) for k in rows[0]}
        print(
            f"{v.label:24} {_fmt(med['events/s'], ',.0f'):>9} {_fmt(med['cpu'], '.3f'):>9} "
            f"{_fmt(med['main'], '.3f'):>9} {_fmt(med['broker'], '.3f'):>8} {_fmt(med['bytes'], '.1f'):>9} "
            f"{_fmt(med['per req'], ',.0f'):>7}"
        )
    base = variants[0]
    print(f"\nratios to {base.label} (within each round, median):")
    print(f"{'variant':24} {'events/s':>9} {'producer':>9} {'main thr':>9} {'broker':>8}")
    for v in variants[1:]:
        ratios: dict[str, list[float | None]] = {"events/s": [], "cpu": [], "main": [], "broker": []}
        for mine, theirs in zip(runs[v.label], runs[base.label], strict=True):
            a, b = figures(mine), figures(theirs)
            for k in ratios:
                x, y = a[k], b[k]
                ratios[k].append(None if x is None or y is None or y == 0 else x / y)
        med = {k: _median(r) for k, r in ratios.items()}
        print(
            f"{v.label:24} {_fmt(med['events/s'], '.3f'):>9} {_fmt(med['cpu'], '.3f'):>9} "
            f"{_fmt(med['main'], '.3f'):>9} {_fmt(med['broker'], '.3f'):>8}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="messages per run (default 300,000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of every variant, interleaved (default 5)")
    parser.add_argument("--seed", type=int, default=20_261_201)
    parser.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        help="LABEL[@REV][:key=value,...] (repeat; the first is the reference; default: this tree as is)",
    )
    parser.add_argument("--outputs", type=Path, help="stack-outputs file (default: the local stack's)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(json.loads(args.child))))
        return

    from pipeline.config.settings import Settings, find_local_outputs, read_outputs_file
    from tests.support.world import IsolatedWorld

    variants: list[Variant] = args.variant or [Variant("this tree", None)]
    if len({v.label for v in variants}) != len(variants):
        parser.error("variant labels must differ")
    outputs_path = args.outputs or find_local_outputs()
    base_outputs = read_outputs_file(outputs_path)
    base = Settings.from_outputs(base_outputs, source=str(outputs_path))
    pids = broker_pids()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average {os.getloadavg()}")
    print(f"{args.events:,} events per run, {args.rounds} rounds, broker pids {pids or 'not found (not local?)'}")
    for v in variants:
        print(f"  {v.label}: code {v.revision or 'this tree'}, settings {v.overrides or 'the defaults'}")

    with tempfile.TemporaryDirectory(prefix="bench-produce-") as tmp:
        sources = {
            v.label: export_revision(v.revision, Path(tmp) / v.label) if v.revision else REPO_ROOT for v in variants
        }
        with IsolatedWorld(base_outputs, base, tag="b", partitions=None) as world:
            spec = {
                "outputs": str(outputs_path),
                "topic": world.topics.events,
                "events": args.events,
                "seed": args.seed,
                "end_time": END_TIME,
                "broker_pids": pids,
            }
            runs: dict[str, list[dict[str, Any]]] = {v.label: [] for v in variants}
            for round_ in range(args.rounds):
                order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
                loads = [os.getloadavg()[0]]
                for v in order:
                    figures = run_once(v, sources[v.label], spec)
                    runs[v.label].append(figures)
                    loads.append(os.getloadavg()[0])
                    print(
                        f"round {round_ + 1} {v.label:24} {figures['events_per_s']:>9,.0f} events/s, "
                        f"producer {per_100k(figures['cpu_s'], args.events):.3f} CPU-s/100k, "
                        f"broker {_fmt(per_100k(figures['broker_cpu_s'], args.events), '.3f')}",
                        flush=True,
                    )
                print(f"round {round_ + 1}: load average (1 min) {min(loads):.2f} to {max(loads):.2f}")
    report(variants, runs, args.events)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
