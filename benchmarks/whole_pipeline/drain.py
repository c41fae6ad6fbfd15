"""The drain: ``pipeline consume --drain`` x N over the backlog, on empty sinks, timed from outside."""

from __future__ import annotations

import logging
import os
import signal
import time

from benchmarks.whole_pipeline.groupwatch import GroupWatcher
from benchmarks.whole_pipeline.procs import Child, ChildFailed, ProcessCpuSampler, reap, stop_all
from benchmarks.whole_pipeline.records import DrainProcess, DrainRun, ProcessUsage, SinksCheck
from benchmarks.whole_pipeline.run import Run, per_100k, read_stats
from pipeline.jobs.consume import STAGES, ConsumeStats
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.kafka_offsets import end_offsets
from tests.support.sink_readers import document_count, rows
from tests.support.world import IsolatedPipeline

log = logging.getLogger("pipeline_bench")

EXIT_GRACE_S = 5.0
"""How long drain processes may take to exit by themselves after the group committed everything."""


def measure_drain(run: Run, sinks: IsolatedPipeline, consumers: int) -> DrainRun:
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
    topic = run.world.topics.events
    ends = end_offsets(sinks.settings, topic)
    watcher = GroupWatcher(sinks.settings, topic, sinks.group, partitions=sorted(ends), ends=ends)
    before = run.start_phase()
    # the database name is in the process title of its backends and autovacuum workers
    backends = ProcessCpuSampler("postgres", f" {sinks.database}")
    backends.start()
    children, stats_files = [], []
    t0 = time.monotonic()
    for i in range(consumers):
        stats_file = run.logs / f"drain{consumers}-consumer{i + 1}.json"
        stats_files.append(stats_file)
        command = sinks.command("consume", "--drain", "--stats-json", str(stats_file), "--group", sinks.group)
        children.append(run.spawn(f"drain{consumers} consumer{i + 1}", command))
    watcher.start()
    try:
        ordered, terminated, killed = _wait_drained(children, watcher, deadline=t0 + 180 + run.backlog / 1_000)
    finally:
        watcher.stop()
        backend_cpu = backends.stop()
    phase = run.phase(f"drain_{consumers}", before)
    for child, usage in zip(children, ordered, strict=True):
        if usage.returncode != 0 and child.name not in killed:
            raise ChildFailed(f"{child.name} exited {usage.returncode}; last output:\n{child.log_tail()}")
    if killed:  # they wrote no stats file; their share of the work is in the sinks and the others' stats
        run.note(
            f"drain with {consumers} consumers: {', '.join(killed)} did not stop on SIGTERM within 30 s and was killed"
        )
    stats = [read_stats(path) or ConsumeStats(stage_seconds={}) for path in stats_files]
    events = sum(s.events for s in stats)
    exit_wall = max(u.wall_s for u in ordered)
    drained = watcher.done_at - t0 if watcher.done_at is not None else None
    check, os_ops, span = _check_sinks(sinks)
    batches = sum(s.batches for s in stats)
    active_rate = (events - events / max(batches, 1)) / span if span and span > 0 else None
    stage_total = {stage: round(sum(float(s.stage_seconds.get(stage, 0.0)) for s in stats), 3) for stage in STAGES}
    attributable = {
        "consumer_processes": sum(u.cpu_s for u in ordered),
        "postgresql_backends": backend_cpu,
        "opensearch_index_operations": sum(os_ops.values()),
    }
    cpu = {k: round(v / events * 1e5, 3) for k, v in attributable.items()} if events else {}
    cores = os.cpu_count() or 1
    ceiling = cores * 1e5 / sum(cpu.values()) if cpu and sum(cpu.values()) > 0 else None
    seconds = drained if drained is not None else exit_wall
    result = DrainRun(
        consumers=consumers,
        events=events,
        seconds=round(seconds, 3),
        events_per_s=round(events / seconds, 1),
        exit_wall_s=round(exit_wall, 3),
        exit_events_per_s=round(events / exit_wall, 1),
        active_events_per_s=round(active_rate, 1) if active_rate else None,
        terminated_after_drained=terminated,
        killed=killed,
        stage_seconds_total=stage_total,
        stage_share_pct=_shares(stage_total),
        processes=[
            _process(child, usage, st, terminated) for child, usage, st in zip(children, ordered, stats, strict=True)
        ],
        cpu_s_per_100k_events=per_100k(sum(u.cpu_s for u in ordered), events),
        peak_rss_mib_max=round(max(u.max_rss_mib for u in ordered), 1),
        machine_busy_cores=phase.machine_busy_cores,
        service_cpu_s_per_100k_events={k: round(v / events * 1e5, 3) for k, v in phase.service_cpu_s.items()}
        if events
        else {},
        all_processes_cpu_s_per_100k_events=per_100k(
            sum(u.cpu_s for u in ordered) + sum(phase.service_cpu_s.values()), events
        ),
        attributable_cpu_s_per_100k_events=cpu,
        opensearch_op_seconds=os_ops,
        cpu_ceiling_events_per_s=round(ceiling, 1) if ceiling else None,
        sinks_check=check,
    )
    if terminated:
        run.note(
            f"drain with {consumers} consumers: {', '.join(terminated)} still running {EXIT_GRACE_S:g} s after "
            "the group had committed everything; sent SIGTERM (see the consumer's --drain exit during a rebalance)"
        )
    if check.postgres_events != run.backlog or check.opensearch_events != run.backlog:
        run.note(
            f"drain with {consumers} consumer(s): sinks hold {check.postgres_events} (PostgreSQL) / "
            f"{check.opensearch_events} (OpenSearch) events of {run.backlog} produced"
        )
    run.report.drain_repeats.setdefault(f"consumers_{consumers}", []).append(result)
    return result


def _process(child: Child, usage: ProcessUsage, stats: ConsumeStats, terminated: list[str]) -> DrainProcess:
    n = stats.events
    return DrainProcess(
        name=child.name,
        events=n,
        messages=stats.messages,
        batches=stats.batches,
        sessions_written=stats.sessions_written,
        dead_letters=stats.dead_letters,
        retries=stats.retries,
        stage_seconds=stats.stage_seconds,
        stage_events_per_s={k: round(n / v, 1) for k, v in stats.stage_seconds.items() if v > 0},
        process=usage,
        cpu_s_per_100k_events=per_100k(usage.cpu_s, n),
        peak_rss_mib=round(usage.max_rss_mib, 1),
        terminated_after_drained=child.name in terminated,
    )


def _wait_drained(
    children: list[Child],
    watcher: GroupWatcher,
    *,
    deadline: float,
) -> tuple[list[ProcessUsage], list[str], list[str]]:
    """Reap the drain processes; SIGTERM those still running ``EXIT_GRACE_S`` after the group
    committed everything, SIGKILL them 30 s later. Returns (usages, terminated, killed)."""
    usages: dict[int, ProcessUsage] = {}
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


def _check_sinks(sinks: IsolatedPipeline) -> tuple[SinksCheck, dict[str, float], float | None]:
    """What the sinks hold after a drain, OpenSearch's operation seconds on the run's indices,
    and the span of ``ingested_at`` (first to last batch) in PostgreSQL."""
    (events,) = rows(
        sinks.settings,
        "SELECT count(*) AS n, extract(epoch FROM max(ingested_at) - min(ingested_at)) AS span FROM events",
    )
    (sessions,) = rows(sinks.settings, "SELECT count(*) AS n FROM sessions")
    client = opensearch_client(sinks.settings.opensearch, "admin", timeout=120)
    try:
        names = sinks.names
        # the operation times first: the refresh below (to count) would add to them
        stats = client.indices.stats(index=f"{names.prefix}-*", metric="indexing,refresh,merge,flush")
        totals = stats["_all"]["total"]
        op_seconds = {
            "index": totals["indexing"]["index_time_in_millis"] / 1000,
            "refresh": totals["refresh"]["total_time_in_millis"] / 1000,
            "merge": totals["merges"]["total_time_in_millis"] / 1000,
            "flush": totals["flush"]["total_time_in_millis"] / 1000,
        }
        check = SinksCheck(
            postgres_events=int(events["n"]),
            postgres_sessions=int(sessions["n"]),
            opensearch_events=document_count(client, names.events_alias),
            opensearch_sessions=document_count(client, names.sessions_alias),
        )
    finally:
        client.close()
    return check, op_seconds, float(events["span"]) if events["span"] is not None else None


def _shares(stages: dict[str, float]) -> dict[str, float]:
    total = sum(stages.values())
    return {k: round(100 * v / total, 1) for k, v in stages.items()} if total > 0 else {}
