"""One consumer draining the same backlog with added network round-trip time to every service.

Each round starts ``pipeline consume --drain`` (the real CLI, one process) on fresh sinks
(a new database, index prefix and consumer group of one private world, see
``tests/support/world.py``) with its stack outputs pointing at delay proxies in front of
Kafka, PostgreSQL and OpenSearch (``benchmarks/latency/``); the proxies add half the
round-trip time in each direction. The 0 ms rounds go through the same proxies with no
delay, so the ratios measure the latency alone, not the relay.

The rounds are interleaved (every round-trip time once per repeat, the order rotated from
one repeat to the next), because the machine is shared and its load drifts; the table
gives the median of the repeats, their spread, and the ratio of each median to the 0 ms
median of the same run. Two rates per round:

* drain: backlog / (seconds from starting the process until the group has committed the
  whole backlog, watched from outside with the admin API); includes start-up and joining
  the group, each through the proxies.
* steady: events stored per second between the first and the last batch
  (``ingested_at`` in PostgreSQL), the first batch left out: the loop alone.

``--direct`` adds rounds without any proxy (the consumer talks to the services
directly), interleaved like the others: what the relay itself costs at 0 ms.

``--in-flight 1,2`` runs every round-trip time with each of those ``pipeline consume
--in-flight K`` (1: one batch at a time), interleaved too, and adds the ratio of each K
to K = 1 at the same round-trip time.

Usage::

    .venv/bin/python -m benchmarks.latency_drain --latency-ms 0,10,50 --events 100000 --repeat 3
    .venv/bin/python -m benchmarks.latency_drain --latency-ms 0,10,50 --in-flight 1,2 --repeat 3

The local broker must have the proxied listener (``devstack/kafka.py``): a stack started
before it existed needs ``devstack stop kafka && devstack up``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.latency.proxy import ProxyThread
from benchmarks.latency.routes import RouteError, check_proxied_listener, parse_latencies, proxied_outputs, routes
from benchmarks.whole_pipeline.groupwatch import GroupWatcher
from benchmarks.whole_pipeline.procs import Child, ChildFailed, spawn, stop_all, wait_all
from benchmarks.whole_pipeline.run import REPO_ROOT, produce_line, read_stats
from devstack.layout import load_layout
from devstack.secrets_store import write_private
from pipeline.config.settings import Settings, find_local_outputs, read_outputs_file
from tests.support.kafka_offsets import end_offsets
from tests.support.sink_readers import document_count, rows
from tests.support.world import IsolatedPipeline, IsolatedWorld

log = logging.getLogger("latency_drain")


@dataclass
class Round:
    repeat: int
    rtt_ms: float | None
    """Added round-trip time; None: no proxy at all (``--direct``)."""
    in_flight: int
    events: int
    drain_s: float
    drain_events_per_s: float
    steady_events_per_s: float | None
    batches: int
    consumer_cpu_s: float
    load_average: list[float]
    proxy_connections: dict[str, int]
    proxy_client_turns: dict[str, int]
    """Per service, the round trips the consumer's connections waited for (``latency.proxy.Turns``)."""


@dataclass
class Summary:
    rtt_ms: float | None
    in_flight: int
    drain_median: float
    drain_runs: list[float]
    drain_ratio_to_0ms: float
    steady_median: float | None
    steady_runs: list[float | None]
    steady_ratio_to_0ms: float | None
    drain_ratio_to_1_in_flight: float | None


@dataclass
class LatencyReport:
    started_at: str
    command: list[str]
    events: int
    repeat: int
    latencies_ms: list[float | None]
    in_flight: list[int]
    load_average_before: list[float]
    load_average_after: list[float] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    summary: list[Summary] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--latency-ms",
        default="0,10,50",
        help="added round-trip times in ms, comma-separated (half each way); 0 is always run (default 0,10,50)",
    )
    parser.add_argument(
        "--in-flight",
        default="1",
        help="pipeline consume --in-flight values to compare, comma-separated (default 1)",
    )
    parser.add_argument(
        "--direct", action="store_true", help="also rounds without any proxy (what the relay costs at 0 ms)"
    )
    parser.add_argument("--events", type=int, default=100_000, help="backlog size (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per round-trip time, interleaved (default 3)")
    parser.add_argument("--seed", type=int, default=20_261_201, help="producer seed (same seed = same events)")
    parser.add_argument("--outputs", type=Path, help="stack-outputs file (default: the local stack's)")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "bench-results", help="directory for the JSON (default bench-results/)"
    )
    args = parser.parse_args(argv)
    try:
        args.latencies = parse_latencies(args.latency_ms)
    except RouteError as exc:
        parser.error(str(exc))
    try:
        args.in_flights = sorted({int(k) for k in args.in_flight.split(",")})
    except ValueError:
        parser.error(f"--in-flight takes whole numbers separated by commas, not {args.in_flight!r}")
    if min(args.in_flights) < 1:
        parser.error("--in-flight values must be at least 1")
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")
    return args


def round_order(
    latencies: Sequence[float | None], in_flights: list[int], repeat: int
) -> list[tuple[int, float | None, int]]:
    """Every (latency, in-flight) pair once per repeat, the order rotated by one each repeat (drift spreads evenly)."""
    pairs = [(rtt, k) for rtt in latencies for k in in_flights]
    n = len(pairs)
    return [(r + 1, *pairs[(r + i) % n]) for r in range(repeat) for i in range(n)]


def drain_round(
    world: IsolatedWorld,
    base_outputs: dict[str, object],
    repeat: int,
    rtt_ms: float | None,
    in_flight: int,
    backlog: int,
) -> Round:
    layout = load_layout()
    sinks = world.new_pipeline(f"r{repeat}-{_label(rtt_ms)}-k{in_flight}")
    try:
        values = json.loads(sinks.outputs_file.read_text())
        proxy_routes = routes(
            base_outputs, kafka_proxied_port=layout.kafka_proxied_port, kafka_proxy_port=layout.kafka_proxy_port
        )
        topic = world.topics.events
        ends = end_offsets(sinks.settings, topic)
        stats_file = world.private_dir / f"stats-{sinks.label}.json"
        with contextlib.ExitStack() as stack:
            if rtt_ms is None:
                proxies = None
                outputs_file = sinks.outputs_file
            else:
                proxies = stack.enter_context(ProxyThread(proxy_routes, one_way_s=rtt_ms / 2000))
                outputs_file = world.private_dir / f"stack-outputs-{sinks.label}-proxied.json"
                write_private(outputs_file, json.dumps(proxied_outputs(values, proxies.ports)))
            command = [
                sys.executable,
                "-m",
                "pipeline",
                "--outputs",
                str(outputs_file),
                "consume",
                "--drain",
                "--index-prefix",
                sinks.index_prefix,
                "--group",
                sinks.group,
                "--stats-json",
                str(stats_file),
                "--in-flight",
                str(in_flight),
            ]
            watcher = GroupWatcher(sinks.settings, topic, sinks.group, partitions=sorted(ends), ends=ends)
            child = spawn(f"consumer {sinks.label}", command, world.private_dir / f"{sinks.label}.log", cwd=REPO_ROOT)
            watcher.start()
            try:
                usage = wait_all([child], timeout=300 + backlog / 200)[0]
            except BaseException:
                stop_all([child])
                raise
            finally:
                watcher.stop()
            connections = {p.route.name: p.connections for p in proxies.proxies} if proxies else {}
            turns = {p.route.name: p.client_turns for p in proxies.proxies} if proxies else {}
        if watcher.done_at is None:
            raise ChildFailed(f"{child.name} exited before the group committed the backlog:\n{child.log_tail()}")
        stats = read_stats(stats_file)
        drain_s = watcher.done_at - child.started
        steady = _steady_rate(sinks, stats.batches if stats else 0)
        _check_sinks(sinks, backlog, child)
        return Round(
            repeat=repeat,
            rtt_ms=rtt_ms,
            in_flight=in_flight,
            events=backlog,
            drain_s=round(drain_s, 3),
            drain_events_per_s=round(backlog / drain_s, 1),
            steady_events_per_s=steady,
            batches=stats.batches if stats else 0,
            consumer_cpu_s=usage.cpu_s,
            load_average=[round(x, 2) for x in os.getloadavg()],
            proxy_connections=connections,
            proxy_client_turns=turns,
        )
    finally:
        world.drop_pipeline(sinks)


def _steady_rate(sinks: IsolatedPipeline, batches: int) -> float | None:
    """Events per second from the first batch's ingest time to the last one's, the first batch left out."""
    (row,) = rows(
        sinks.settings,
        "SELECT count(*) AS n, extract(epoch FROM max(ingested_at) - min(ingested_at)) AS span FROM events",
    )
    span = float(row["span"]) if row["span"] is not None else 0.0
    if batches < 2 or span <= 0:
        return None
    events = int(row["n"])
    return round((events - events / batches) / span, 1)


def _check_sinks(sinks: IsolatedPipeline, backlog: int, child: Child) -> None:
    """Both stores hold every event of the backlog (else the round measured something else)."""
    ((row),) = rows(sinks.settings, "SELECT count(*) AS n FROM events")
    client = sinks.opensearch()
    try:
        documents = document_count(client, sinks.names.events_alias)
    finally:
        client.close()
    if int(row["n"]) != backlog or documents != backlog:
        raise ChildFailed(
            f"{child.name}: the stores hold {row['n']} rows and {documents} documents of {backlog} events"
        )


def summarize(rounds: list[Round], latencies: Sequence[float | None], in_flights: list[int]) -> list[Summary]:
    """Per (round-trip time, in-flight): medians and runs; ratios to 0 ms with the same in-flight,
    and to in-flight 1 at the same round-trip time (ratios of medians)."""

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    groups = {
        (rtt, k): [r for r in rounds if r.rtt_ms == rtt and r.in_flight == k] for rtt in latencies for k in in_flights
    }
    drains = {key: median([r.drain_events_per_s for r in rs]) for key, rs in groups.items()}
    steadies = {
        key: median([r.steady_events_per_s for r in rs if r.steady_events_per_s is not None])
        for key, rs in groups.items()
    }
    out = []
    for (rtt, k), rs in groups.items():
        drain = drains[(rtt, k)]
        assert drain is not None
        out.append(
            Summary(
                rtt_ms=rtt,
                in_flight=k,
                drain_median=drain,
                drain_runs=[r.drain_events_per_s for r in rs],
                drain_ratio_to_0ms=ratio(drain, drains[(0.0, k)]) or 0.0,
                steady_median=steadies[(rtt, k)],
                steady_runs=[r.steady_events_per_s for r in rs],
                steady_ratio_to_0ms=ratio(steadies[(rtt, k)], steadies[(0.0, k)]),
                drain_ratio_to_1_in_flight=ratio(drain, drains.get((rtt, 1))) if 1 in in_flights else None,
            )
        )
    return out


def print_summary(report: LatencyReport) -> None:
    print(
        f"\none consumer, {report.events:,} events, {report.repeat} interleaved repeats; "
        f"load average {_load(report.load_average_before)} -> {_load(report.load_average_after)}"
    )
    print(
        f"{'RTT':>7} {'K':>2} {'drain ev/s (runs)':>32} {'/0ms':>5} {'/K=1':>5} {'steady ev/s (runs)':>32} {'/0ms':>5}"
    )
    for s in report.summary:
        drain_runs = ", ".join(f"{x:,.0f}" for x in s.drain_runs)
        steady_runs = ", ".join("-" if x is None else f"{x:,.0f}" for x in s.steady_runs)
        steady = "-" if s.steady_median is None else f"{s.steady_median:,.0f}"
        print(
            f"{_label(s.rtt_ms):>7} {s.in_flight:>2} {f'{s.drain_median:,.0f} ({drain_runs})':>32} "
            f"{s.drain_ratio_to_0ms:>5.2f} {_ratio(s.drain_ratio_to_1_in_flight):>5} "
            f"{f'{steady} ({steady_runs})':>32} {_ratio(s.steady_ratio_to_0ms):>5}"
        )


def _label(rtt_ms: float | None) -> str:
    return "direct" if rtt_ms is None else f"{rtt_ms:g}ms"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _raise_interrupt(signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not interrupt the cleanup
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # the world's topics, databases and users are removed
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    outputs_path = args.outputs or find_local_outputs(REPO_ROOT)
    base_outputs = dict(read_outputs_file(outputs_path))
    base = Settings.from_outputs(base_outputs, source=str(outputs_path))
    layout = load_layout()
    try:
        check_proxied_listener("127.0.0.1", layout.kafka_proxied_port)
    except RouteError as exc:
        raise SystemExit(str(exc)) from None
    started = dt.datetime.now(dt.UTC)
    latencies: list[float | None] = [*([None] if args.direct else []), *args.latencies]
    report = LatencyReport(
        started_at=started.isoformat(timespec="seconds"),
        command=[sys.executable, "-m", "benchmarks.latency_drain", *(argv if argv is not None else sys.argv[1:])],
        events=args.events,
        repeat=args.repeat,
        latencies_ms=latencies,
        in_flight=args.in_flights,
        load_average_before=[round(x, 2) for x in os.getloadavg()],
    )
    with IsolatedWorld(base_outputs, base, tag="b", partitions=None, strict=False) as world:
        producer_sinks = world.new_pipeline("backlog")
        log.info("backlog: pipeline produce --events %d", args.events)
        producer = spawn(
            "producer",
            producer_sinks.command("produce", "--events", str(args.events), "--seed", str(args.seed)),
            world.private_dir / "producer.log",
            cwd=REPO_ROOT,
        )
        wait_all([producer], timeout=120 + args.events / 2_000)
        backlog = produce_line(producer).delivered
        world.drop_pipeline(producer_sinks)
        for repeat, rtt, in_flight in round_order(latencies, args.in_flights, args.repeat):
            t0 = time.monotonic()
            result = drain_round(world, base_outputs, repeat, rtt, in_flight, backlog)
            report.rounds.append(result)
            log.info(
                "repeat %d, RTT %s, in flight %d: %.0f events/s (steady %s), %.1f s round, load %s",
                repeat,
                _label(rtt),
                in_flight,
                result.drain_events_per_s,
                result.steady_events_per_s,
                time.monotonic() - t0,
                _load(result.load_average),
            )
    report.load_average_after = [round(x, 2) for x in os.getloadavg()]
    report.summary = summarize(report.rounds, latencies, args.in_flights)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"latency-drain-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(asdict(report), indent=2))
    print_summary(report)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
