"""Round trips: one consumer drains the same small backlog at 0 ms and at added round-trip times.

Why a phase of its own, on its own topic: on this machine every service is a loopback hop
away, so the drain above measures CPU, not waiting. A consumer on a VM in the service's
region sees about 1 ms per round trip, one on a laptop tens of ms; how much of the rate
survives that is a property of the consumer (how many round trips it waits for in turn),
measured here with the delay proxies of ``benchmarks/latency/`` and the rounds of
``benchmarks/latency_drain.py``. The backlog is small (``--latency-events``) because a
round at 50 ms is several times slower than one at 0 ms.
"""

from __future__ import annotations

import errno
import logging

from benchmarks.latency.routes import RouteError, check_proxied_listener
from benchmarks.latency_drain import drain_round, round_order
from benchmarks.whole_pipeline.procs import ChildFailed, wait_all
from benchmarks.whole_pipeline.records import Latency, LatencyRound, Spread
from benchmarks.whole_pipeline.run import Run, produce_line
from devstack.layout import load_layout
from pipeline.jobs.consume import ConsumeOptions
from tests.support.world import IsolatedWorld

log = logging.getLogger("pipeline_bench")


def rtt_key(rtt_ms: float) -> str:
    return f"{rtt_ms:g}ms"


def measure_latency(run: Run) -> Latency:
    """Produce ``--latency-events`` into a topic of its own, then drain it once per round-trip time and
    repeat, interleaved; fill ``report.latency``."""
    options, base = run.options, run.world
    rtts = sorted({0.0, *options.latency_ms})
    layout = load_layout()
    try:
        check_proxied_listener("127.0.0.1", layout.kafka_proxied_port)
    except RouteError as exc:
        raise ChildFailed(f"round trips: {exc}") from None
    in_flight = ConsumeOptions.in_flight
    rounds: list[LatencyRound] = []
    with IsolatedWorld(base.base_outputs, base.base, tag="l", partitions=None, strict=False) as world:
        backlog_sinks = world.new_pipeline("backlog")
        log.info("round trips: pipeline produce --events %d into a topic of their own", options.latency_events)
        producer = run.spawn(
            "latency producer",
            backlog_sinks.command("produce", "--events", str(options.latency_events), "--seed", str(options.seed + 2)),
        )
        wait_all([producer], timeout=120 + options.latency_events / 2_000)
        backlog = produce_line(producer).delivered
        world.drop_pipeline(backlog_sinks)
        for repeat, rtt, k in round_order(rtts, [in_flight], options.repeat):
            assert rtt is not None
            try:
                one = drain_round(world, world.base_outputs, repeat, rtt, k, backlog)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise ChildFailed(
                    f"round trips: a delay proxy could not listen ({exc.strerror}): the broker advertises one "
                    f"fixed proxy port ({layout.kafka_proxy_port}), so only one round-trip benchmark can run at a time "
                    "on a stack; is another running?"
                ) from None
            log.info("round trips: repeat %d, %g ms: %.0f events/s", repeat, rtt, one.drain_events_per_s)
            rounds.append(
                LatencyRound(
                    repeat=repeat,
                    rtt_ms=rtt,
                    events=one.events,
                    drain_s=one.drain_s,
                    events_per_s=one.drain_events_per_s,
                    steady_events_per_s=one.steady_events_per_s,
                    consumer_cpu_s=one.consumer_cpu_s,
                    load_average=one.load_average,
                    batches=one.batches,
                    client_turns=one.proxy_client_turns,
                )
            )
    run.report.notes.extend(world.cleanup_errors)
    rates = {rtt_key(rtt): Spread.of([r.events_per_s for r in rounds if r.rtt_ms == rtt]) for rtt in rtts}
    at_zero = rates[rtt_key(0.0)].median
    ratios = {
        key: round(spread.median / at_zero, 4) if spread.median is not None and at_zero else None
        for key, spread in rates.items()
    }
    result = Latency(
        events=backlog, in_flight=in_flight, rtt_ms=rtts, rounds=rounds, events_per_s=rates, ratio_to_0ms=ratios
    )
    run.report.latency = result
    return result
