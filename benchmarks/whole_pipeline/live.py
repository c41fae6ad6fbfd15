"""Freshness under a live load: ``pipeline produce --rate R`` while ``pipeline consume`` runs (see ``freshness.py``)."""

from __future__ import annotations

import dataclasses
import logging
import signal
import time

from benchmarks.whole_pipeline.freshness import FreshnessSampler
from benchmarks.whole_pipeline.groupwatch import GroupWatcher
from benchmarks.whole_pipeline.procs import Child, ChildFailed, reap, stop
from benchmarks.whole_pipeline.records import Freshness, LiveConsumer, LiveProducer, MeasurementOverhead
from benchmarks.whole_pipeline.run import PRODUCE_LINE, Run, per_100k, produce_line, read_stats
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.world import IsolatedPipeline

log = logging.getLogger("pipeline_bench")

FRESHNESS_SAMPLES_PER_S = 250
"""Sample about this many events per second for freshness: enough for a stable p99
(15,000 samples in 60 s), few enough that polling for them does not load the sinks."""


def measure_freshness(run: Run, sinks: IsolatedPipeline) -> Freshness:
    """Live load through the real CLI while the sampler watches the sinks.

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
    options = run.options
    rate, seconds = options.freshness_rate, options.freshness_seconds
    warmup, max_warmup = options.freshness_warmup, max(options.freshness_warmup, options.freshness_max_warmup)
    every = max(1, round(rate / FRESHNESS_SAMPLES_PER_S))
    log.info(
        "freshness: %g events/s for %g s after the consumer caught up (warm-up %g..%g s), sampling every %d-th event",
        rate,
        seconds,
        warmup,
        max_warmup,
        every,
    )
    topic = run.world.topics.events
    # A new group that starts at the topic's end: the drain group may still hold a member that
    # vanished mid-rebalance (see the drain), and joining it would wait for that member's timeout.
    sinks = dataclasses.replace(sinks, group=run.world.group_at_end("live" + run.repeat_label))
    sampler = FreshnessSampler(sinks.settings, topic, sinks.index_prefix, sample_every=every)
    lag = GroupWatcher(sinks.settings, topic, sinks.group, partitions=sorted(sampler.start_offsets), poll_s=0.2)
    stats_file = run.logs / "freshness-consumer.json"
    consumer = run.spawn(
        "freshness consumer", sinks.command("consume", "--stats-json", str(stats_file), "--group", sinks.group)
    )
    window: tuple[float, float] | None = None
    caught_up = False
    try:
        sampler.start()
        lag.start()
        _wait_for_log(consumer, "assigned partitions", timeout=90)
        log.info("freshness: consumer ready; starting the producer")
        before = run.start_phase()
        own_cpu = time.process_time()
        searches = _search_seconds(sinks)
        duration = max_warmup + seconds + 15  # headroom: the window, not the duration, should end the load
        producer = run.spawn(
            "freshness producer",
            sinks.command(
                "produce", "--rate", f"{rate:g}", "--duration", f"{duration:g}", "--seed", str(options.seed + 1)
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
        phase = run.phase("freshness", before)
        own_cpu = time.process_time() - own_cpu
        searches = _search_seconds(sinks) - searches
    finally:
        sampler.stop()
        lag.stop()
    line = produce_line(producer)
    measured, plot = sampler.results(*window)
    stats = read_stats(stats_file)
    events = stats.events if stats is not None else 0
    first = sampler.first_sent() or window[0]
    figures = Freshness(
        **{f: getattr(measured, f) for f in measured.__struct_fields__},
        rate_requested=rate,
        seconds_requested=seconds,
        warmup_min_s=warmup,
        warmup_max_s=max_warmup,
        caught_up=caught_up,
        window_starts_after_s=round(window[0] - first, 2),
        lag_when_window_started=next((n for t, n in reversed(lag.history) if t <= window[0]), None),
        producer=LiveProducer(
            events=line.delivered,
            seconds=line.seconds,
            events_per_s=line.events_per_s,
            process=produced,
            command=f"pipeline produce --rate {rate:g} --duration {duration:g} (SIGTERM when the window was complete)",
        ),
        consumer=LiveConsumer(
            events=events,
            batches=stats.batches if stats is not None else None,
            stage_seconds=stats.stage_seconds if stats is not None else None,
            process=consumed,
            cpu_s_per_100k_events=per_100k(consumed.cpu_s, events),
        ),
        all_samples_seen=all_seen,
        errors=sampler.errors(),
        measurement_overhead=MeasurementOverhead(
            benchmark_process_cpu_s=round(own_cpu, 2), opensearch_search_time_s=round(searches, 2)
        ),
        machine_busy_cores=phase.machine_busy_cores,
        opensearch_refresh_interval=DEFAULT_REFRESH_INTERVAL,
    )
    plot.lag = [(t - first, n) for t, n in lag.history if t >= first - 1.0]
    if not all_seen:
        run.note(
            "freshness: some sampled events were never seen in a sink (no progress "
            "for 30 s, or 10 min after the load; counted as never_seen)"
        )
    if not caught_up:
        run.note(
            f"freshness: the consumer never got within 1 s of the load ({rate:g} events/s) in {max_warmup:g} s; "
            "the window started anyway, so its figures include a backlog the consumer could not work off"
        )
    if figures.sent_in_first_0_5_s > rate:
        run.note(
            f"freshness: `pipeline produce --rate {rate:g}` sent {figures.sent_in_first_0_5_s:,} messages in "
            f"its first 0.5 s (a steady rate sends {rate / 2:,.0f}): it takes the stream's start time before "
            "building the simulation and then sends everything due meanwhile at once"
        )
    run.report.freshness_repeats.append(figures)
    run.plots.append(plot)
    return figures


def _search_seconds(sinks: IsolatedPipeline) -> float:
    """Query time OpenSearch has spent on the pipeline's events indices so far (the sampler's searches)."""
    client = opensearch_client(sinks.settings.opensearch, "admin")
    try:
        stats = client.indices.stats(index=sinks.names.events_pattern, metric="search")
        return float(stats["_all"]["total"]["search"]["query_time_in_millis"]) / 1000
    finally:
        client.close()


def _wait_for_log(child: Child, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in child.log.read_text(errors="replace"):
            return
        if child.proc.poll() is not None:
            raise ChildFailed(f"{child.name} exited before `{text}`; last output:\n{child.log_tail()}")
        time.sleep(0.05)
    raise ChildFailed(f"{child.name}: no `{text}` within {timeout:.0f} s; last output:\n{child.log_tail()}")
