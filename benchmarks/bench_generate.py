"""How fast the generator hands a producer (key, value) pairs, in one process.

Prints figures only (no assertions). The producer's budget: the end-to-end target is
100,000 events/s including the Kafka produce call on a 2-core machine, so generation
plus encoding should stay well under 10 us per message (> 150,000 messages/s).

Usage::

    python -m benchmarks.bench_generate              # all scenarios
    python -m benchmarks.bench_generate --messages 300000 --repeat 3

Numbers on a shared machine move with its load: the script prints the load average
and keeps the best of ``--repeat`` runs per scenario.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import islice

from pipeline.simulation import FaultConfig, LiveStream, SimulatedMessage, SimulationConfig, backfill

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _drain(messages: Iterator[SimulatedMessage], n: int) -> int:
    """What a producer loop does with each message, minus the Kafka call."""
    count = 0
    for message in islice(messages, n):
        key, value = message.key, message.value  # noqa: F841 - the producer reads both
        count += 1
    return count


def _live_iter(config: SimulationConfig, step_ms: int) -> Iterator[SimulatedMessage]:
    """A producer loop over LiveStream whose clock jumps ``step_ms`` per poll (no sleeping)."""
    live = LiveStream(config, END)
    now = END
    step = dt.timedelta(milliseconds=step_ms)
    while True:
        now += step
        yield from live.until(now)


def _measure(make: Callable[[], Iterator[SimulatedMessage]], n: int, repeat: int) -> tuple[float, float, float]:
    """(start-up s, best us/message wall, best us/message cpu) over ``repeat`` runs."""
    best_wall = best_cpu = float("inf")
    startup = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        it = make()
        first = next(it)  # builds the simulation and runs its warm-up
        del first
        startup = min(startup, time.perf_counter() - t0)
        w0, c0 = time.perf_counter(), time.process_time()
        count = _drain(it, n)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best_wall = min(best_wall, wall / count * 1e6)
        best_cpu = min(best_cpu, cpu / count * 1e6)
    return startup, best_wall, best_cpu


def _scenarios() -> dict[str, Callable[[], Iterator[SimulatedMessage]]]:
    faults = FaultConfig(duplicate_rate=0.01, late_rate=0.01, malformed_rate=0.01)
    return {
        "backfill 24h, rate 10/s (realistic day)": lambda: backfill(SimulationConfig(seed=1, rate=10), END),
        "backfill 24h, rate 1,000/s": lambda: backfill(SimulationConfig(seed=1, rate=1_000), END),
        "backfill 24h, rate 10/s, 1% dup+late+malformed": lambda: backfill(
            SimulationConfig(seed=1, rate=10), END, faults=faults
        ),
        "live --rate 100000, polled every 10 ms": lambda: _live_iter(
            SimulationConfig(seed=1, rate=100_000, diurnal=False), 10
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=300_000, help="messages timed per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (best is kept)")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)  # internal: one scenario, one process
    args = parser.parse_args()
    scenarios = _scenarios()

    if args.scenario is not None:
        startup, wall, cpu = _measure(scenarios[args.scenario], args.messages, args.repeat)
        print(f"{startup} {wall} {cpu}")
        return

    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {os.getloadavg()}")
    print(f"{args.messages:,} messages per run, best of {args.repeat}, each scenario in a fresh process\n")
    print(f"{'scenario':48} {'start s':>8} {'us/msg':>8} {'cpu us':>8} {'msgs/s':>10}")
    for name in scenarios:
        # A fresh interpreter per scenario: the previous one's heap must not slow the next.
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--scenario",
                name,
                "--messages",
                str(args.messages),
                "--repeat",
                str(args.repeat),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        startup, wall, cpu = map(float, out.split())
        print(f"{name:48} {startup:8.2f} {wall:8.2f} {cpu:8.2f} {1e6 / wall:10,.0f}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
