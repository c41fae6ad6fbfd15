"""The whole pipeline's performance in one run on the local stack: limits, producer, drain, freshness, cost.

One command measures, on the real services and through the real CLI, against a private
topic, database and index prefix (``tests/support/world.py``; nothing of production or of
other users is touched, and everything created is removed, also on failure):

1. Limits: raw Kafka consume, decode+validate, PostgreSQL binary COPY and OpenSearch bulk
   rates of the same messages (``benchmarks/limits.py``).
2. Producer: ``pipeline produce --events N`` at full speed, the real CLI in a subprocess;
   its own final line (generation + every delivery confirmed) gives the rate. The same
   run is the backlog for step 3.
3. Drain: ``pipeline consume --drain --stats-json F`` (real CLI subprocess) empties the
   backlog into both sinks with 1 consumer, then, on fresh sinks (new database, index
   prefix and group, same topic), with 2 consumer processes in one group.
4. Freshness: ``pipeline produce --rate R --duration S`` while ``pipeline consume`` runs;
   send-to-visible delay per sink (``benchmarks/freshness.py`` says how and why).
5. Cost: CPU seconds per 100,000 events of every pipeline process (the kernel's ``rusage``
   at exit) and its peak RSS (``VmHWM``, followed while it runs); see ``benchmarks/procs.py``.

It prints a table and writes ``pipeline-bench-<UTC time>.json`` (machine, versions,
settings, every figure and ratio, targets with PASS/MISS) and a ``.png`` chart next to
it. Targets are compared, never asserted: the exit code says only whether the run worked.

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
import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import chart
from benchmarks.freshness import SINKS, FreshnessSampler
from benchmarks.groupwatch import GroupWatcher
from benchmarks.limits import (
    Limit,
    decode_and_postgres_limits,
    kafka_consume_limit,
    opensearch_limit,
)
from benchmarks.procs import (
    Child,
    ChildFailed,
    ChildUsage,
    ProcessCpuSampler,
    Snapshot,
    phase_usage,
    reap,
    spawn,
    stop,
    stop_all,
    wait_all,
)
from pipeline.config.settings import Settings, find_local_outputs, read_outputs_file
from pipeline.contract.names import IndexNames
from pipeline.jobs.consume import STAGES, ConsumeOptions
from pipeline.kafka.producer import PRODUCER_DEFAULTS
from pipeline.sinks.opensearch.index import DEFAULT_MAX_BYTES, DEFAULT_MAX_DOCS
from pipeline.sinks.opensearch.templates import DEFAULT_REFRESH_INTERVAL
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.kafka_offsets import end_offsets
from tests.support.world import IsolatedPipeline, IsolatedWorld

REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("pipeline_bench")

TARGET_PRODUCER = 100_000.0
TARGET_DRAIN_ONE = 20_000.0
TARGET_DRAIN_SHARE_OF_SLOWEST_SINK = 0.5
TARGET_FRESHNESS_P99_S = 2.0
TARGET_FRESHNESS_RATE = 5_000.0
FRESHNESS_SAMPLES_PER_S = 250
"""Sample about this many events per second for freshness: enough for a stable p99
(15,000 samples in 60 s), few enough that polling for them does not load the sinks."""
_EMPTY_STATS: dict[str, Any] = {
    "messages": 0,
    "events": 0,
    "dead_letters": 0,
    "sessions_written": 0,
    "batches": 0,
    "retries": 0,
    "stage_seconds": {},
}
EXIT_GRACE_S = 5.0
"""How long drain processes may take to exit by themselves after the group committed everything."""
TOP_LEVEL_KEYS = (
    "benchmark",
    "mode",
    "started_at",
    "finished_at",
    "command",
    "machine",
    "versions",
    "settings",
    "limits",
    "producer",
    "drain",
    "freshness",
    "cost",
    "ratios",
    "targets",
    "bottleneck",
    "phases",
    "files",
    "notes",
)
PRODUCE_LINE = re.compile(
    r"produce: sent (\d+), delivered (\d+), failed (\d+) in ([\d.]+) s \(([\d,]+) events/s\), seed (-?\d+)"
)
UTC = dt.UTC


# --- description of the machine and the software -----------------------------------------------


def machine_info() -> dict[str, Any]:
    """Cores, memory and CPU model: what a figure from this run must be read against."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 2**20, 2)
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "cpu_model": model or platform.processor() or None,
        "kernel": platform.release(),
        "hostname": platform.node(),
    }


def _kafka_version() -> str:
    """The running broker's version from its jar name (local stack), else the devstack pin."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in args:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == b"-cp":
                for directory in args[i + 1].decode(errors="replace").split(":"):
                    for jar in Path(directory.rstrip("*")).glob("kafka_2.13-*.jar"):
                        match = re.fullmatch(r"kafka_2\.13-([\d.]+)\.jar", jar.name)
                        if match:
                            return match.group(1)
    from devstack.layout import KAFKA_VERSION

    return f"{KAFKA_VERSION} (devstack pin; broker process not found)"


def versions(settings: Settings) -> dict[str, Any]:
    """Versions of everything whose speed is measured, read from the running services where possible."""
    import confluent_kafka

    out: dict[str, Any] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kafka": _kafka_version(),
        "librdkafka": confluent_kafka.libversion()[0],
    }
    with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        out["postgresql"] = str(row[0]) if row else None
    client = opensearch_client(settings.opensearch, "admin")
    try:
        info = client.info()
        out["opensearch"] = f"{info['version'].get('distribution', 'opensearch')} {info['version']['number']}"
    finally:
        client.close()
    packages = {}
    for name in (
        "clickstream-pipeline",
        "confluent-kafka",
        "psycopg",
        "psycopg-binary",
        "opensearch-py",
        "msgspec",
        "click",
        "matplotlib",
    ):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    out["packages"] = packages
    out["git"] = _git()
    return out


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    status = run("status", "--porcelain")
    return {"commit": run("rev-parse", "HEAD"), "uncommitted_changes": bool(status) if status is not None else None}


# --- the phases ------------------------------------------------------------------------------------


class Bench:
    """One run: holds the world, the options, the children it started and the report it fills."""

    def __init__(self, args: argparse.Namespace, world: IsolatedWorld, logs: Path) -> None:
        self.args = args
        self.world = world
        self.logs = logs
        self.children: list[Child] = []
        self.report: dict[str, Any] = {"limits": {}, "drain": {}, "phases": {}, "notes": []}
        self.backlog = 0
        """Events delivered by the backlog producer (what the limits and drains process)."""
        self.plot: dict[str, Any] = {}
        """Freshness data for the chart (delays per sink, timeline, send rate, lag)."""

    def spawn(self, name: str, command: list[str]) -> Child:
        log_file = self.logs / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".log")
        child = spawn(name, command, log_file, cwd=REPO_ROOT)
        self.children.append(child)
        return child

    def phase(self, name: str, before: Snapshot) -> dict[str, Any]:
        usage = phase_usage(before, Snapshot.take())
        self.report["phases"][name] = usage
        return usage

    # 2. producer (and the backlog for everything else)
    def produce_backlog(self, sinks: IsolatedPipeline) -> None:
        args = self.args
        log.info("producer: pipeline produce --events %d (the backlog)", args.events)
        before = Snapshot.take()
        child = self.spawn("producer", sinks.command("produce", "--events", str(args.events), "--seed", str(args.seed)))
        usage = wait_all([child], timeout=120 + args.events / 2_000)[0]
        phase = self.phase("producer", before)
        line = _produce_line(child)
        delivered = int(line.group(2))
        rate = float(line.group(5).replace(",", ""))
        self.report["producer"] = {
            "how": "real CLI in a subprocess: `pipeline produce --events N --seed S`; rate = its own final line "
            "(generation + every delivery confirmed, from the start of produce() to the last delivery report)",
            "events": delivered,
            "failed": int(line.group(3)),
            "seconds": float(line.group(4)),
            "events_per_s": rate,
            "wall_s": round(usage.wall_s, 3),
            "wall_events_per_s": round(delivered / usage.wall_s, 1),
            "process": usage.to_dict(),
            "cpu_s_per_100k_events": round(usage.cpu_s / delivered * 1e5, 3),
            "machine_busy_cores": phase["machine_busy_cores"],
            "final_line": line.group(0),
        }
        self.backlog = delivered

    # 1. limits
    def limits(self, sinks: IsolatedPipeline) -> None:
        settings, topic = sinks.settings, self.world.topics.events
        log.info("limit: raw Kafka consume of %d messages", self.backlog)
        before = Snapshot.take()
        kafka = kafka_consume_limit(settings, topic, self.world.group("limit"))
        self.phase("limit_kafka", before)
        log.info("limit: decode, then PostgreSQL binary COPY")
        before = Snapshot.take()
        decode, postgres = decode_and_postgres_limits(settings, topic)
        self.phase("limit_decode_postgres", before)
        log.info("limit: OpenSearch bulk")
        before = Snapshot.take()
        scratch = f"{sinks.index_prefix}-limit"
        opensearch = opensearch_limit(settings, topic, scratch)
        self.phase("limit_opensearch", before)
        limits: list[Limit] = [kafka, decode, postgres, opensearch]
        self.report["limits"] = {limit.name: limit.to_dict() for limit in limits}
        self.report["limits"]["opensearch_bulk"]["scratch_prefix"] = scratch
        sink_limits = {"postgres_copy": postgres.rate, "opensearch_bulk": opensearch.rate}
        slowest = min(sink_limits, key=sink_limits.__getitem__)
        self.report["limits"]["slowest_sink"] = {"name": slowest, "events_per_s": round(sink_limits[slowest], 1)}
        for limit in limits:
            if limit.items != self.backlog:
                self.report["notes"].append(f"limit {limit.name} processed {limit.items} of {self.backlog} messages")

    # 3. drain
    def drain(self, sinks: IsolatedPipeline, consumers: int) -> dict[str, Any]:
        """Time ``pipeline consume --drain`` x ``consumers`` over the backlog, on empty sinks.

        Two clocks: until the group has committed the whole backlog (watched from outside
        with the admin API every 100 ms; the consumer commits a batch only after both sinks
        have it, so this is "everything written everywhere"), which is the headline rate,
        and until the last process exited. The processes are left to exit by themselves;
        only if one is still running ``EXIT_GRACE_S`` after the group had committed
        everything is it sent SIGTERM (and that is reported): with two processes, one that
        exits while the group is rebalancing leaves the other waiting for the group's
        session timeout (45 s), which is a shutdown matter, not drain throughput.
        """
        log.info("drain: %d consumer process(es), pipeline consume --drain", consumers)
        ends = end_offsets(sinks.settings, self.world.topics.events)
        watcher = GroupWatcher(
            sinks.settings, self.world.topics.events, sinks.group, partitions=sorted(ends), ends=ends
        )
        before = Snapshot.take()
        # the database name is in the process title of its backends and autovacuum workers
        backends = ProcessCpuSampler("postgres", f" {sinks.database}")
        backends.start()
        children, stats_files = [], []
        t0 = time.monotonic()
        for i in range(consumers):
            stats_file = self.logs / f"drain{consumers}-consumer{i + 1}.json"
            stats_files.append(stats_file)
            children.append(
                self.spawn(
                    f"drain{consumers} consumer{i + 1}",
                    sinks.command("consume", "--drain", "--stats-json", str(stats_file), "--group", sinks.group),
                )
            )
        watcher.start()
        try:
            ordered, terminated, killed = _wait_drained(children, watcher, deadline=t0 + 180 + self.backlog / 1_000)
        finally:
            watcher.stop()
            backend_cpu = backends.stop()
        phase = self.phase(f"drain_{consumers}", before)
        for child, usage in zip(children, ordered, strict=True):
            if usage.returncode != 0 and child.name not in killed:
                raise ChildFailed(f"{child.name} exited {usage.returncode}; last output:\n{child.log_tail()}")
        if killed:  # they wrote no stats file; their share of the work is in the sinks and the others' stats
            self.report["notes"].append(
                f"drain with {consumers} consumers: {', '.join(killed)} did not stop on "
                "SIGTERM within 30 s and was killed"
            )
        stats = [json.loads(path.read_text()) if path.exists() else _EMPTY_STATS for path in stats_files]
        events = sum(int(s["events"]) for s in stats)
        exit_wall = max(u.wall_s for u in ordered)
        drained = watcher.done_at - t0 if watcher.done_at is not None else None
        check = self._check_sinks(sinks)
        batches = sum(int(s["batches"]) for s in stats)
        span = check.pop("ingested_span_s")
        active_rate = (events - events / max(batches, 1)) / span if span and span > 0 else None
        stage_total = {
            stage: round(sum(float(s["stage_seconds"].get(stage, 0.0)) for s in stats), 3) for stage in STAGES
        }
        consumer_cpu = sum(u.cpu_s for u in ordered)
        os_ops = check.pop("opensearch_op_seconds")
        attributable = {
            "consumer_processes": consumer_cpu,
            "postgresql_backends": backend_cpu,
            "opensearch_index_operations": sum(os_ops.values()),
        }
        per_100k = {k: round(v / events * 1e5, 3) for k, v in attributable.items()} if events else {}
        cores = os.cpu_count() or 1
        ceiling = cores * 1e5 / sum(per_100k.values()) if per_100k and sum(per_100k.values()) > 0 else None
        processes = []
        for child, usage, st in zip(children, ordered, stats, strict=True):
            n = int(st["events"])
            processes.append(
                {
                    "name": child.name,
                    "events": n,
                    "messages": st["messages"],
                    "batches": st["batches"],
                    "sessions_written": st["sessions_written"],
                    "dead_letters": st["dead_letters"],
                    "retries": st["retries"],
                    "stage_seconds": st["stage_seconds"],
                    "stage_events_per_s": {k: round(n / v, 1) for k, v in st["stage_seconds"].items() if v > 0},
                    "process": usage.to_dict(),
                    "cpu_s_per_100k_events": round(usage.cpu_s / n * 1e5, 3) if n else None,
                    "peak_rss_mib": round(usage.max_rss_mib, 1),
                    "terminated_after_drained": child.name in terminated,
                }
            )
        seconds = drained if drained is not None else exit_wall
        result = {
            "consumers": consumers,
            "how": "real CLI subprocesses `pipeline consume --drain --stats-json F` in one fresh group on fresh "
            "sinks; events_per_s = events / seconds from spawn until the group had committed the whole "
            "backlog (interpreter start and group join included); exit_* = until the last process exited",
            "events": events,
            "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1),
            "exit_wall_s": round(exit_wall, 3),
            "exit_events_per_s": round(events / exit_wall, 1),
            "active_events_per_s": round(active_rate, 1) if active_rate else None,
            "active_note": "events / (last - first batch's ingested_at in PostgreSQL), one mean batch discounted: "
            "the rate while batches flow, without start-up and shutdown",
            "terminated_after_drained": terminated,
            "killed": killed,
            "stage_seconds_total": stage_total,
            "stage_share_pct": _shares(stage_total),
            "processes": processes,
            "cpu_s_per_100k_events": round(sum(u.cpu_s for u in ordered) / events * 1e5, 3) if events else None,
            "peak_rss_mib_max": round(max(u.max_rss_mib for u in ordered), 1),
            "machine_busy_cores": phase["machine_busy_cores"],
            "service_cpu_s_per_100k_events": {k: round(v / events * 1e5, 3) for k, v in phase["service_cpu_s"].items()}
            if events
            else {},
            "service_cpu_note": "whole service processes over the phase: includes other users of the shared stack",
            "attributable_cpu_s_per_100k_events": per_100k,
            "attributable_note": "consumer: rusage; postgresql_backends: CPU of the backends connected to this run's "
            "database (sampled /proc); opensearch_index_operations: index+refresh+merge+flush "
            "time OpenSearch reports for this run's indices (thread time: about its CPU while "
            "cores are free, more when its threads wait for a core on a busy machine); Kafka's "
            "share is not attributable on a shared broker",
            "opensearch_op_seconds": os_ops,
            "cpu_ceiling_events_per_s": round(ceiling, 1) if ceiling else None,
            "cpu_ceiling_note": "cores x 100,000 / attributable CPU-s per 100k events: the rate at which these "
            "processes alone would use every core of the machine",
            "sinks_check": check,
        }
        if terminated:
            self.report["notes"].append(
                f"drain with {consumers} consumers: {', '.join(terminated)} still running {EXIT_GRACE_S:g} s after "
                "the group had committed everything; sent SIGTERM (see the consumer's --drain exit during a rebalance)"
            )
        if check["postgres_events"] != self.backlog or check["opensearch_events"] != self.backlog:
            self.report["notes"].append(
                f"drain with {consumers} consumer(s): sinks hold {check['postgres_events']} (PostgreSQL) / "
                f"{check['opensearch_events']} (OpenSearch) events of {self.backlog} produced"
            )
        self.report["drain"][f"consumers_{consumers}"] = result
        return result

    def _check_sinks(self, sinks: IsolatedPipeline) -> dict[str, Any]:
        """What the sinks hold after a drain (so a fast but empty run cannot pass unnoticed)."""
        with psycopg.connect(sinks.settings.postgres.conninfo("admin"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*), extract(epoch FROM max(ingested_at) - min(ingested_at)) FROM events"
            ).fetchone()
            sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()
        client = opensearch_client(sinks.settings.opensearch, "admin", timeout=120)
        try:
            names = IndexNames(sinks.index_prefix)
            # the operation times first: the refresh below (to count) would add to them
            totals = client.indices.stats(index=f"{names.prefix}-*", metric="indexing,refresh,merge,flush")["_all"][
                "total"
            ]
            op_seconds = {
                "index": totals["indexing"]["index_time_in_millis"] / 1000,
                "refresh": totals["refresh"]["total_time_in_millis"] / 1000,
                "merge": totals["merges"]["total_time_in_millis"] / 1000,
                "flush": totals["flush"]["total_time_in_millis"] / 1000,
            }
            client.indices.refresh(index=f"{names.events_alias},{names.sessions_alias}")
            os_events = int(client.count(index=names.events_alias)["count"])
            os_sessions = int(client.count(index=names.sessions_alias)["count"])
        finally:
            client.close()
        return {
            "postgres_events": int(row[0]) if row else 0,
            "postgres_sessions": int(sessions[0]) if sessions else 0,
            "opensearch_events": os_events,
            "opensearch_sessions": os_sessions,
            "opensearch_op_seconds": op_seconds,
            "ingested_span_s": float(row[1]) if row and row[1] is not None else None,
        }

    # 4. freshness
    def freshness(self, sinks: IsolatedPipeline) -> None:
        """Live load through the real CLI while the sampler watches the sinks (see ``freshness.py``).

        The measured window is ``--freshness-seconds`` of load at the fixed rate, and it
        starts only once the consumer has caught up with the load: at least
        ``--freshness-warmup`` seconds after the first message, and when the group's lag
        (watched with the admin API) is at most one second of events. Why: the figures
        must describe the pipeline at a steady rate, not how long it takes to work off a
        start-up backlog; ``pipeline produce --rate R`` opens with a burst of R x (seconds
        it spends building its simulation) messages, and the consumer's first batch opens
        its connections. If the lag never gets that low within ``--freshness-max-warmup``
        seconds, the window starts then anyway and ``caught_up`` is false: the consumer
        could not keep up with (or recover at) that rate, and the figures show it.
        The producer is started with ``--duration max-warmup + seconds + 15`` and sent SIGTERM
        (it finishes cleanly and prints its final line) once the window is complete.
        """
        args = self.args
        rate, seconds = args.freshness_rate, args.freshness_seconds
        warmup, max_warmup = args.freshness_warmup, max(args.freshness_warmup, args.freshness_max_warmup)
        every = max(1, round(rate / FRESHNESS_SAMPLES_PER_S))
        log.info(
            "freshness: %g events/s for %g s after the consumer caught up (warm-up %g..%g s), "
            "sampling every %d-th event",
            rate,
            seconds,
            warmup,
            max_warmup,
            every,
        )
        # A new group that starts at the topic's end: the drain group may still hold a member that
        # vanished mid-rebalance (see the drain), and joining it would wait for that member's timeout.
        sinks = dataclasses.replace(sinks, group=self.world.group_at_end("live"))
        sampler = FreshnessSampler(sinks.settings, self.world.topics.events, sinks.index_prefix, sample_every=every)
        lag = GroupWatcher(
            sinks.settings, self.world.topics.events, sinks.group, partitions=sorted(sampler.start_offsets), poll_s=0.2
        )
        stats_file = self.logs / "freshness-consumer.json"
        consumer = self.spawn(
            "freshness consumer", sinks.command("consume", "--stats-json", str(stats_file), "--group", sinks.group)
        )
        window: tuple[float, float] | None = None
        caught_up = False
        try:
            sampler.start()
            lag.start()
            _wait_for_log(consumer, "assigned partitions", timeout=90)
            log.info("freshness: consumer ready; starting the producer")
            before = Snapshot.take()
            own_cpu = time.process_time()
            searches = _search_seconds(sinks)
            duration = max_warmup + seconds + 15  # headroom: the window, not the duration, should end the load
            producer = self.spawn(
                "freshness producer",
                sinks.command(
                    "produce", "--rate", f"{rate:g}", "--duration", f"{duration:g}", "--seed", str(args.seed + 1)
                ),
            )
            start: float | None = None
            deadline = time.monotonic() + duration + 120
            while (produced := reap(producer)) is None:
                now = time.time()
                first = sampler.first_sent()
                if start is None and first is not None and now >= first + warmup:
                    if lag.lag is not None and lag.lag <= rate and lag.history and lag.history[-1][0] >= now - 0.5:
                        start, caught_up = now, True
                        log.info(
                            "freshness: consumer caught up (lag %d) %.1f s after the first message; window starts",
                            lag.lag,
                            now - first,
                        )
                    elif now >= first + max_warmup:
                        start = now
                        log.info(
                            "freshness: consumer not caught up after %.0f s (lag %s); window starts anyway",
                            max_warmup,
                            lag.lag,
                        )
                if start is not None and window is None and now >= start + seconds:
                    window = (start, now)
                    producer.proc.send_signal(signal.SIGTERM)
                if time.monotonic() > deadline:
                    raise ChildFailed(f"{producer.name} did not finish; last output:\n{producer.log_tail()}")
                time.sleep(0.05)
            # -SIGTERM: our signal met the producer already shutting down at the end of its duration
            # (Python restores the default handler at exit); its final line tells whether it finished.
            if produced.returncode != 0 and not (
                produced.returncode == -signal.SIGTERM
                and window is not None
                and PRODUCE_LINE.search(producer.log.read_text(errors="replace"))
            ):
                raise ChildFailed(f"{producer.name} exited {produced.returncode}; last output:\n{producer.log_tail()}")
            if window is None:  # the producer ended first (it was slower to start than the budget allowed)
                window = (start if start is not None else time.time(), time.time())
            log.info("freshness: window complete; waiting until every sampled event is visible")
            all_seen = sampler.wait_visible()
            consumed = stop(consumer)
            phase = self.phase("freshness", before)
            own_cpu = time.process_time() - own_cpu
            searches = _search_seconds(sinks) - searches
        finally:
            sampler.stop()
            lag.stop()
        line = _produce_line(producer)
        figures, plot = sampler.results(*window)
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        events = int(stats.get("events", 0))
        first = sampler.first_sent() or window[0]
        figures.update(
            {
                "rate_requested": rate,
                "seconds_requested": seconds,
                "warmup_min_s": warmup,
                "warmup_max_s": max_warmup,
                "caught_up": caught_up,
                "window_starts_after_s": round(window[0] - first, 2),
                "lag_when_window_started": next((n for t, n in reversed(lag.history) if t <= window[0]), None),
                "producer": {
                    "events": int(line.group(2)),
                    "seconds": float(line.group(4)),
                    "events_per_s": float(line.group(5).replace(",", "")),
                    "process": produced.to_dict(),
                    "command": f"pipeline produce --rate {rate:g} --duration {duration:g} (SIGTERM when the "
                    "window was complete)",
                },
                "consumer": {
                    "events": events,
                    "batches": stats.get("batches"),
                    "stage_seconds": stats.get("stage_seconds"),
                    "process": consumed.to_dict(),
                    "cpu_s_per_100k_events": round(consumed.cpu_s / events * 1e5, 3) if events else None,
                },
                "all_samples_seen": all_seen,
                "errors": sampler.errors(),
                "measurement_overhead": {
                    "benchmark_process_cpu_s": round(own_cpu, 2),
                    "opensearch_search_time_s": round(searches, 2),
                    "note": "CPU of this process (tail reader, pollers, lag watcher) and OpenSearch's query time "
                    "for the polling searches during the phase: load the measurement itself adds",
                },
                "machine_busy_cores": phase["machine_busy_cores"],
                "opensearch_refresh_interval": DEFAULT_REFRESH_INTERVAL,
            }
        )
        plot["lag"] = [(t - first, n) for t, n in lag.history if t >= first - 1.0]
        if not all_seen:
            self.report["notes"].append(
                "freshness: some sampled events were never seen in a sink (no progress "
                "for 30 s, or 10 min after the load; counted as never_seen)"
            )
        if not caught_up:
            self.report["notes"].append(
                f"freshness: the consumer never got within 1 s of the load ({rate:g} events/s) in {max_warmup:g} s; "
                "the window started anyway, so its figures include a backlog the consumer could not work off"
            )
        if figures["sent_in_first_0_5_s"] > rate:
            self.report["notes"].append(
                f"freshness: `pipeline produce --rate {rate:g}` sent {figures['sent_in_first_0_5_s']:,} messages in "
                f"its first 0.5 s (a steady rate sends {rate / 2:,.0f}): it takes the stream's start time before "
                "building the simulation and then sends everything due meanwhile at once"
            )
        self.report["freshness"] = figures
        self.plot = plot


def _wait_drained(
    children: list[Child],
    watcher: GroupWatcher,
    *,
    deadline: float,
) -> tuple[list[ChildUsage], list[str], list[str]]:
    """Reap the drain processes; SIGTERM those still running ``EXIT_GRACE_S`` after the group
    committed everything, SIGKILL them 30 s later. Returns (usages, terminated, killed)."""
    usages: dict[int, ChildUsage] = {}
    terminated: list[str] = []
    killed: list[str] = []

    def alive() -> list[Child]:
        return [c for i, c in enumerate(children) if i not in usages]

    while len(usages) < len(children):
        for i, child in enumerate(children):
            if i not in usages and (usage := reap(child)) is not None:
                usages[i] = usage
        since = time.monotonic() - watcher.done_at if watcher.done_at is not None else 0.0
        if alive() and since > EXIT_GRACE_S and not terminated:
            for child in alive():
                child.proc.send_signal(signal.SIGTERM)
                terminated.append(child.name)
        if alive() and since > EXIT_GRACE_S + 30 and not killed:
            for child in alive():
                child.proc.kill()
                killed.append(child.name)
        if time.monotonic() > deadline:
            stop_all(alive())
            raise ChildFailed(f"the drain did not finish in time; last output:\n{children[0].log_tail()}")
        time.sleep(0.02)
    return [usages[i] for i in range(len(children))], terminated, killed


def _search_seconds(sinks: IsolatedPipeline) -> float:
    """Query time OpenSearch has spent on the sink set's events indices so far (the sampler's searches)."""
    client = opensearch_client(sinks.settings.opensearch, "admin")
    try:
        stats = client.indices.stats(index=IndexNames(sinks.index_prefix).events_pattern, metric="search")
        return float(stats["_all"]["total"]["search"]["query_time_in_millis"]) / 1000
    finally:
        client.close()


def _produce_line(child: Child) -> re.Match[str]:
    matches = list(PRODUCE_LINE.finditer(child.log.read_text(errors="replace")))
    if not matches:
        raise ChildFailed(f"{child.name}: no final `produce:` line; last output:\n{child.log_tail()}")
    return matches[-1]


def _wait_for_log(child: Child, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in child.log.read_text(errors="replace"):
            return
        if child.proc.poll() is not None:
            raise ChildFailed(f"{child.name} exited before `{text}`; last output:\n{child.log_tail()}")
        time.sleep(0.05)
    raise ChildFailed(f"{child.name}: no `{text}` within {timeout:.0f} s; last output:\n{child.log_tail()}")


def _shares(stages: dict[str, float]) -> dict[str, float]:
    total = sum(stages.values())
    return {k: round(100 * v / total, 1) for k, v in stages.items()} if total > 0 else {}


# --- judging: ratios, targets, bottleneck ---------------------------------------------------------------


def judge(report: dict[str, Any]) -> None:
    """Fill ``ratios``, ``targets`` (PASS/MISS, never asserted), ``cost`` and ``bottleneck``."""
    limits = report["limits"]
    one = report["drain"].get("consumers_1", {})
    two = report["drain"].get("consumers_2", {})
    slowest = limits["slowest_sink"]["events_per_s"]
    rate1 = one.get("events_per_s", 0.0)
    ratios: dict[str, Any] = {
        "producer_vs_target": _ratio(report["producer"]["events_per_s"], TARGET_PRODUCER),
        "drain1_vs_slowest_sink_limit": _ratio(rate1, slowest),
        "drain1_active_vs_slowest_sink_limit": _ratio(one.get("active_events_per_s"), slowest),
        "drain2_vs_slowest_sink_limit": _ratio(two.get("events_per_s"), slowest),
        "drain2_vs_drain1": _ratio(two.get("events_per_s"), rate1),
        "postgres_limit_vs_opensearch_limit": _ratio(
            limits["postgres_copy"]["events_per_s"], limits["opensearch_bulk"]["events_per_s"]
        ),
    }
    for name in ("kafka_consume", "decode", "postgres_copy", "opensearch_bulk"):
        ratios[f"drain1_vs_{name}_limit"] = _ratio(rate1, limits[name]["events_per_s"])
    fresh = report.get("freshness", {}).get("sinks", {})
    for sink in SINKS:
        ratios[f"freshness_p99_{sink}_vs_target"] = _ratio(fresh.get(sink, {}).get("p99_s"), TARGET_FRESHNESS_P99_S)
    report["ratios"] = ratios

    targets = [
        _target("producer events/s", report["producer"]["events_per_s"], ">=", TARGET_PRODUCER, "events/s"),
        _target("drain events/s, 1 consumer", rate1, ">=", TARGET_DRAIN_ONE, "events/s"),
        _target(
            "drain, 1 consumer, share of the slowest sink limit",
            ratios["drain1_vs_slowest_sink_limit"],
            ">=",
            TARGET_DRAIN_SHARE_OF_SLOWEST_SINK,
            "ratio",
        ),
    ]
    rate = report.get("freshness", {}).get("rate_requested")
    for sink in SINKS:
        note = "" if rate == TARGET_FRESHNESS_RATE else f" (measured at {rate:g} events/s, target is at 5,000)"
        if sink == "opensearch_events":
            note += " (refresh_interval 5 s by design: cannot be met without changing it)"
        targets.append(
            _target(f"freshness p99, {sink}", fresh.get(sink, {}).get("p99_s"), "<=", TARGET_FRESHNESS_P99_S, "s", note)
        )
    report["targets"] = targets

    report["cost"] = {
        "consumer_cpu_s_per_100k_events": one.get("cpu_s_per_100k_events"),
        "consumer_peak_rss_mib": one.get("peak_rss_mib_max"),
        "two_consumers_cpu_s_per_100k_events": two.get("cpu_s_per_100k_events"),
        "two_consumers_peak_rss_mib_max": two.get("peak_rss_mib_max"),
        "live_consumer_cpu_s_per_100k_events": report.get("freshness", {})
        .get("consumer", {})
        .get("cpu_s_per_100k_events"),
        "producer_cpu_s_per_100k_events": report["producer"].get("cpu_s_per_100k_events"),
        "service_cpu_s_per_100k_events_drain1": one.get("service_cpu_s_per_100k_events"),
        "how": "CPU: os.wait4 rusage of each CLI process at exit (user+system); peak RSS: VmHWM from "
        "/proc/<pid>/status every 100 ms while it runs (not ru_maxrss, which inherits the parent's); "
        "services from /proc/<pid>/stat deltas over the phase (includes other users of the shared stack)",
    }

    shares = one.get("stage_share_pct", {})
    work = {k: v for k, v in shares.items() if k != "poll"}
    if work:
        stage = max(work, key=work.__getitem__)
        report["bottleneck"] = {
            "largest_stage_1_consumer": stage,
            "share_pct": work[stage],
            "stage_share_pct": shares,
            "machine_busy_cores_drain1": one.get("machine_busy_cores"),
            "service_cpu_s_per_100k_events": one.get("service_cpu_s_per_100k_events"),
            "reading": _bottleneck_text(report, stage),
        }


def _bottleneck_text(report: dict[str, Any], stage: str) -> str:
    one = report["drain"]["consumers_1"]
    two = report["drain"].get("consumers_2", {})
    cores = report["machine"]["cores"] or 1
    busy = one.get("machine_busy_cores") or 0
    parts = [
        f"with one consumer the {stage} stage takes the largest share of its time "
        f"({one['stage_share_pct'].get(stage, 0):.0f}%)"
    ]
    cpu = one.get("attributable_cpu_s_per_100k_events") or {}
    if cpu and one.get("cpu_ceiling_events_per_s"):
        biggest = max(cpu, key=cpu.__getitem__)
        parts.append(
            f"per 100k events it costs {sum(cpu.values()):.1f} CPU-s that can be attributed "
            f"({', '.join(f'{k} {v:.1f}' for k, v in cpu.items())}; largest: {biggest}), so {cores} cores "
            f"cap it near {one['cpu_ceiling_events_per_s']:,.0f} events/s even with nothing else running"
        )
    if busy >= 0.85 * cores:
        parts.append(
            f"the machine was CPU-bound during the drain ({busy:.2f} of {cores} cores busy, other users' work included)"
        )
    else:
        parts.append(f"the machine had idle CPU during the drain ({busy:.2f} of {cores} cores busy)")
    scaling = _ratio(two.get("events_per_s"), one.get("events_per_s"))
    if scaling is not None:
        parts.append(f"a second consumer process changed the rate x{scaling:.2f}")
    return "; ".join(parts)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def _target(name: str, value: float | None, op: str, target: float, unit: str, note: str = "") -> dict[str, Any]:
    if value is None:
        verdict = "n/a"
    else:
        verdict = "PASS" if (value >= target if op == ">=" else value <= target) else "MISS"
    return {
        "name": name,
        "measured": value,
        "op": op,
        "target": target,
        "unit": unit,
        "result": verdict,
        "note": note.strip(),
    }


# --- output -----------------------------------------------------------------------------------------------


def print_report(report: dict[str, Any], out: Any = sys.stdout) -> None:
    """The human-readable table."""

    def p(text: str = "") -> None:
        print(text, file=out)

    m, v, s = report["machine"], report["versions"], report["settings"]
    p()
    p(f"pipeline_bench ({report['mode']}), {report['started_at']} .. {report['finished_at']}")
    p(
        f"machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu_model']}; load average before "
        f"{_load(m['load_average_before'])}, after {_load(m['load_average_after'])}"
    )
    p(
        f"versions: {v['python']}, Kafka {v['kafka']}, PostgreSQL {v['postgresql']}, OpenSearch {v['opensearch']}, "
        f"librdkafka {v['librdkafka']}"
    )
    p(
        f"settings: {s['events']:,} events backlog, {s['partitions']} partitions, "
        f"consumer batch {s['consumer_batch_size']:,}, "
        f"freshness {s['freshness_rate']:g} events/s for {s['freshness_seconds']:g} s (warm-up "
        f"{s['freshness_warmup_s']:g}..{s['freshness_max_warmup_s']:g} s)"
    )
    p()
    limits = report["limits"]
    slowest = limits["slowest_sink"]["events_per_s"]
    p(f"{'stage':44} {'events/s':>10} {'vs slowest':>10} {'CPU s/100k':>10} {'peak RSS':>9}")
    p(f"{'':44} {'':>10} {'sink limit':>10} {'events':>10} {'MiB':>9}")
    p("-" * 87)
    names = {
        "kafka_consume": "limit: Kafka consume, raw (consumer cert)",
        "decode": "limit: decode + validate",
        "postgres_copy": "limit: PostgreSQL binary COPY (LIKE events)",
        "opensearch_bulk": "limit: OpenSearch bulk (sink builders)",
    }
    for key, label in names.items():
        p(f"{label:44} {limits[key]['events_per_s']:>10,.0f} {limits[key]['events_per_s'] / slowest:>10.2f}")
    prod = report["producer"]
    p(
        f"{'producer: pipeline produce (CLI line)':44} {prod['events_per_s']:>10,.0f} {'':>10} "
        f"{prod['cpu_s_per_100k_events']:>10.2f} {prod['process']['max_rss_mib']:>9.0f}"
    )
    for run in report["drain"].values():
        label = f"drain: pipeline consume --drain x{run['consumers']}"
        p(
            f"{label:44} {run['events_per_s']:>10,.0f} {run['events_per_s'] / slowest:>10.2f} "
            f"{run['cpu_s_per_100k_events']:>10.2f} {run['peak_rss_mib_max']:>9.0f}"
        )
        p(
            f"{'  until the last process exited':44} {run['exit_events_per_s']:>10,.0f} "
            f"{run['exit_events_per_s'] / slowest:>10.2f}"
        )
        if run.get("active_events_per_s"):
            p(
                f"{'  while batches flow (ingested_at span)':44} {run['active_events_per_s']:>10,.0f} "
                f"{run['active_events_per_s'] / slowest:>10.2f}"
            )
    p(f"(slowest sink limit: {limits['slowest_sink']['name']}, {slowest:,.0f} events/s)")
    p()
    p("per-stage seconds of the drain (from --stats-json; events/s if that stage were alone):")
    p(f"  {'run':22} " + " ".join(f"{st:>17}" for st in STAGES))
    for run in report["drain"].values():
        for proc in run["processes"]:
            cells = []
            for st in STAGES:
                sec = float(proc["stage_seconds"].get(st, 0.0))
                rate = proc["stage_events_per_s"].get(st)
                cells.append(f"{sec:7.1f}s {rate:>8,.0f}/s" if rate else f"{sec:7.1f}s {'':>10}")
            p(f"  {proc['name']:22} " + " ".join(f"{c:>17}" for c in cells))
    p(
        "CPU-s per 100k events that belong to this run (consumer rusage, PostgreSQL backends of its database, "
        "OpenSearch operations on its indices):"
    )
    for run in report["drain"].values():
        cpu = run["attributable_cpu_s_per_100k_events"]
        ceiling = run.get("cpu_ceiling_events_per_s")
        limit = f" -> {m['cores']}-core ceiling {ceiling:,.0f} events/s" if ceiling else ""
        p(
            f"  x{run['consumers']}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            + f"; total {sum(cpu.values()):.2f}{limit}"
        )
    p("machine CPU during the drains (cores busy; whole-service CPU-s per 100k events, shared stack):")
    for run in report["drain"].values():
        svc = ", ".join(f"{k} {val:.2f}" for k, val in run["service_cpu_s_per_100k_events"].items())
        written = sum(pr["sessions_written"] for pr in run["processes"])
        p(
            f"  x{run['consumers']}: {run['machine_busy_cores']} of {m['cores']} cores busy; {svc}; "
            f"session rows written {written:,}"
        )
    p()
    fresh = report.get("freshness", {})
    if fresh:
        sent = fresh["window_send_rate"] or 0.0
        p(f"freshness: `{fresh['producer']['command']}`")
        state = (
            f"consumer caught up, lag {fresh['lag_when_window_started'] or 0:,}"
            if fresh["caught_up"]
            else "consumer NOT caught up"
        )
        p(
            f"  measured window {fresh['window_s']:g} s at {sent:,.0f} events/s sent, starting "
            f"{fresh['window_starts_after_s']:g} s after the first message ({state}); "
            f"{fresh['samples']:,} sampled events (every {fresh['sample_every']}-th), polled every "
            f"{fresh['tick_s'] * 1000:.0f} ms:"
        )
        p(
            f"  {'sink':20} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'never seen':>11}  "
            f"{'p50 by third of the window':>28}"
        )
        for sink, f in fresh["sinks"].items():
            thirds = " ".join("n/a" if x is None else f"{x:.3f}" for x in f["p50_by_third_s"])
            p(
                f"  {sink:20} "
                + " ".join(_sec(f[k]) for k in ("p50_s", "p95_s", "p99_s", "max_s"))
                + f" {f['never_seen']:>11,}  {thirds:>28}"
            )
        p(
            f"  (OpenSearch refresh_interval is {fresh['opensearch_refresh_interval']} by design: documents become "
            "searchable only at the next refresh)"
        )
        c = fresh["consumer"]
        o = fresh["measurement_overhead"]
        p(
            f"  live consumer: {c['cpu_s_per_100k_events']} CPU s per 100k events, peak RSS "
            f"{c['process']['max_rss_mib']:.0f} MiB; measurement overhead: {o['benchmark_process_cpu_s']} CPU-s here, "
            f"{o['opensearch_search_time_s']} s of OpenSearch query time"
        )
    p()
    p(f"{'target':64} {'measured':>12} {'target':>12} {'result':>6}")
    for t in report["targets"]:
        measured = (
            "n/a"
            if t["measured"] is None
            else (f"{t['measured']:,.0f}" if t["unit"] == "events/s" else f"{t['measured']:.3f}")
        )
        target = f"{t['op']} {t['target']:,.0f}" if t["unit"] == "events/s" else f"{t['op']} {t['target']:g}"
        p(f"{t['name']:64} {measured:>12} {target:>12} {t['result']:>6}" + (f"  {t['note']}" if t["note"] else ""))
    if any(t["result"] == "MISS" for t in report["targets"][:3]):
        one = report["drain"]["consumers_1"]
        p(
            "  drain MISS, where the one consumer's time went: "
            + ", ".join(f"{k} {v:.0f}%" for k, v in one["stage_share_pct"].items())
        )
    if report.get("bottleneck"):
        p(f"bottleneck: {report['bottleneck']['reading']}")
    for note in report["notes"]:
        p(f"note: {note}")
    p()
    p(f"JSON: {report['files']['json']}")
    p(f"chart: {report['files']['chart'] or report['files'].get('chart_skipped')}")


def _sec(value: float | None) -> str:
    return f"{'n/a':>8}" if value is None else f"{value:>7.3f}s"


def _load(load: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    defaults = (
        {
            "events": 20_000,
            "freshness_rate": 1_000.0,
            "freshness_seconds": 3.0,
            "freshness_warmup": 1.0,
            "freshness_max_warmup": 6.0,
        }
        if args.ci
        else {
            "events": 1_000_000,
            "freshness_rate": TARGET_FRESHNESS_RATE,
            "freshness_seconds": 60.0,
            "freshness_warmup": 5.0,
            "freshness_max_warmup": 40.0,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.events < 1 or args.freshness_rate <= 0 or args.freshness_seconds <= 0 or args.freshness_warmup < 0:
        parser.error("--events, --freshness-rate and --freshness-seconds must be positive")
    return args


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
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("opensearch", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    outputs_path = args.outputs or find_local_outputs(REPO_ROOT)
    base_outputs = read_outputs_file(outputs_path)
    base = Settings.from_outputs(base_outputs, source=str(outputs_path))
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(UTC)
    stem = f"pipeline-bench-{started:%Y%m%dT%H%M%SZ}"
    json_path, png_path = args.out / f"{stem}.json", args.out / f"{stem}.png"

    report: dict[str, Any] = {
        "benchmark": "pipeline_bench",
        "mode": "ci" if args.ci else "full",
        "started_at": started.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": {**machine_info(), "load_average_before": list(os.getloadavg())},
        "versions": versions(base),
    }
    log.info("load average before: %s", _load(report["machine"]["load_average_before"]))
    world = IsolatedWorld(base_outputs, base, tag="b", partitions=None, strict=False)
    bench: Bench | None = None
    failure: BaseException | None = None
    try:
        with world:
            bench = Bench(args, world, world.private_dir)
            report["settings"] = {
                "events": args.events,
                "seed": args.seed,
                "freshness_rate": args.freshness_rate,
                "freshness_seconds": args.freshness_seconds,
                "freshness_warmup_s": args.freshness_warmup,
                "freshness_max_warmup_s": args.freshness_max_warmup,
                "freshness_samples_per_s": FRESHNESS_SAMPLES_PER_S,
                "topic": world.topics.events,
                "partitions": world.topics.partitions,
                "consumer_batch_size": ConsumeOptions.batch_size,
                "consumer_batch_wait_s": ConsumeOptions.batch_wait_s,
                "producer_config": {k: v for k, v in PRODUCER_DEFAULTS.items() if k != "log_level"},
                "opensearch_refresh_interval": DEFAULT_REFRESH_INTERVAL,
                "opensearch_max_docs_per_request": DEFAULT_MAX_DOCS,
                "opensearch_max_bytes_per_request": DEFAULT_MAX_BYTES,
                "stack_outputs": str(outputs_path),
            }
            try:
                first = world.new_pipeline("drain1")
                bench.produce_backlog(first)
                bench.limits(first)
                bench.drain(first, consumers=1)
                world.drop_pipeline(first)
                second = world.new_pipeline("drain2")
                bench.drain(second, consumers=2)
                bench.freshness(second)  # the same sinks, now holding the backlog: a realistic state
            finally:
                stop_all(bench.children)
                if args.keep_logs:
                    _keep_logs(world.private_dir, args.out / f"{stem}-logs")
    except BaseException as exc:  # report, clean up (done by the world), exit non-zero
        failure = exc
    report["machine"]["load_average_after"] = list(os.getloadavg())
    report["finished_at"] = dt.datetime.now(UTC).isoformat(timespec="seconds")
    if bench is not None:
        for key in ("limits", "drain", "phases", "notes"):
            report[key] = bench.report[key]
        for key in ("producer", "freshness"):
            if key in bench.report:
                report[key] = bench.report[key]
    if world.cleanup_errors:
        report.setdefault("notes", []).extend(world.cleanup_errors)
    if failure is not None:
        # Keep what was measured: a partial report, named so that nobody takes it for a result.
        report["error"] = f"{type(failure).__name__}: {str(failure)[:2000]}"
        partial = args.out / f"{stem}.failed.json"
        partial.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log.error(
            "benchmark failed: %s: %s (partial report: %s)",
            type(failure).__name__,
            str(failure).splitlines()[0] if str(failure) else "",
            partial,
        )
        if isinstance(failure, ChildFailed):
            print(str(failure), file=sys.stderr)
        elif not isinstance(failure, KeyboardInterrupt):
            import traceback

            traceback.print_exception(failure)
        return 130 if isinstance(failure, KeyboardInterrupt) else 1

    judge(report)
    report["files"] = {"json": str(json_path), "chart": None}
    skipped = chart.render(
        png_path,
        chart.bars_from(report),
        {"producer target": TARGET_PRODUCER, "drain target": TARGET_DRAIN_ONE},
        bench.plot if bench is not None else {},
        TARGET_FRESHNESS_P99_S,
        f"{stem}: {report['mode']}, {args.events:,} events, {report['machine']['cores']} cores, "
        f"load {_load(report['machine']['load_average_before'])} -> "
        f"{_load(report['machine']['load_average_after'])}",
    )
    if skipped:
        report["files"]["chart_skipped"] = skipped
    else:
        report["files"]["chart"] = str(png_path)
    ordered = {key: report.get(key) for key in TOP_LEVEL_KEYS}
    json_path.write_text(json.dumps(ordered, indent=2, default=str) + "\n")
    print_report(ordered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
