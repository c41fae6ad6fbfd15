"""The backlog: ``pipeline produce --events N`` at full speed (the producer's figures), then the limits over it."""

from __future__ import annotations

import logging

from benchmarks.whole_pipeline.limits import decode_and_postgres_limits, kafka_consume_limit, opensearch_limit
from benchmarks.whole_pipeline.procs import wait_all
from benchmarks.whole_pipeline.records import Limits, Producer, SlowestSink
from benchmarks.whole_pipeline.run import Run, per_100k, produce_line
from tests.support.world import IsolatedPipeline

log = logging.getLogger("pipeline_bench")


def produce_backlog(run: Run, sinks: IsolatedPipeline) -> Producer:
    """The real CLI in a subprocess; its own final line gives the rate. Sets ``run.backlog``."""
    options = run.options
    log.info("producer: pipeline produce --events %d (the backlog)", options.events)
    before = run.start_phase()
    child = run.spawn(
        "producer", sinks.command("produce", "--events", str(options.events), "--seed", str(options.seed))
    )
    usage = wait_all([child], timeout=120 + options.events / 2_000)[0]
    phase = run.phase("producer", before)
    line = produce_line(child)
    run.backlog = line.delivered
    run.report.producer = Producer(
        events=line.delivered,
        failed=line.failed,
        seconds=line.seconds,
        events_per_s=line.events_per_s,
        wall_s=round(usage.wall_s, 3),
        wall_events_per_s=round(line.delivered / usage.wall_s, 1),
        process=usage,
        cpu_s_per_100k_events=per_100k(usage.cpu_s, line.delivered),
        machine_busy_cores=phase.machine_busy_cores,
        final_line=line.text,
    )
    return run.report.producer


def measure_limits(run: Run, sinks: IsolatedPipeline) -> Limits:
    """Each limit alone over the backlog, so they do not compete with each other for the cores."""
    settings, topic = sinks.settings, run.world.topics.events
    log.info("limit: raw Kafka consume of %d messages", run.backlog)
    before = run.start_phase()
    kafka = kafka_consume_limit(settings, topic, run.world.group("limit"))
    run.phase("limit_kafka", before)
    log.info("limit: decode, then PostgreSQL binary COPY")
    before = run.start_phase()
    decode, postgres = decode_and_postgres_limits(settings, topic)
    run.phase("limit_decode_postgres", before)
    log.info("limit: OpenSearch bulk")
    before = run.start_phase()
    opensearch = opensearch_limit(settings, topic, f"{sinks.index_prefix}-limit")
    run.phase("limit_opensearch", before)
    slowest = min((postgres, "postgres_copy"), (opensearch, "opensearch_bulk"), key=lambda x: x[0].events_per_s)
    limits = Limits(
        kafka_consume=kafka,
        decode=decode,
        postgres_copy=postgres,
        opensearch_bulk=opensearch,
        slowest_sink=SlowestSink(name=slowest[1], events_per_s=slowest[0].events_per_s),
    )
    for name, limit in limits.each().items():
        if limit.items != run.backlog:
            run.note(f"limit {name} processed {limit.items} of {run.backlog} messages")
    run.report.limits = limits
    return limits
