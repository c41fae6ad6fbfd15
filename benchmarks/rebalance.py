"""How long are a leaving member's partitions left unread: classic group protocol vs KIP-848?

Of two consumers of one group, one leaves (SIGTERM: it finishes its batch, commits,
leaves the group), in three scenarios: alone (``leave``); while a third one starts
(``leave+join``); and just after a third one has started joining, so that it leaves in
the middle of the rebalance that join began (``join-then-leave``, the case the classic
protocol handles worst). A live stream runs throughout. The figure is the time from the
SIGTERM until every partition the leaving member owned has its committed offset move
again, i.e. until another member has read, written and committed it. Measured from outside, with the admin
API, on a private world of the local stack (``tests/support/world.py``); broker defaults for
the session timeout and heartbeat interval (as on Aiven)::

    .venv/bin/python -m benchmarks.rebalance --repeat 3

Prints each run and the median per protocol; no assertion (speed is measured, not asserted).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.config.settings import find_local_outputs, load_settings
from tests.support.kafka_offsets import committed_offsets
from tests.support.process_control import owned_partitions, wait_for
from tests.support.world import IsolatedPipeline, IsolatedWorld


def owned(log: Path) -> set[int]:
    return owned_partitions(log.read_text())


def committed(world: IsolatedWorld, group: str) -> dict[int, int]:
    return committed_offsets(world.admin, group, world.topics.events, range(world.topics.partitions))


SCENARIOS = ("leave", "leave+join", "join-then-leave")


def one_run(world: IsolatedWorld, sinks: IsolatedPipeline, protocol: str, scenario: str, label: str) -> float:
    group = world.group(f"{protocol}-{SCENARIOS.index(scenario)}-{label}")
    every = set(range(world.topics.partitions))
    args = ["consume", "--group", group, "--group-protocol", protocol]
    logs = [world.private_dir / f"{group}-{name}.log" for name in ("a", "b", "c")]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(sinks.command(*args), stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        spawn(logs[0])
        leaving = spawn(logs[1])
        wait_for(
            lambda: bool(owned(logs[0]) and owned(logs[1])) and owned(logs[0]) | owned(logs[1]) == every,
            what="both members owning partitions",
            timeout=120,
        )
        start = committed(world, group)
        wait_for(
            lambda: all(committed(world, group).get(p, -1) > start.get(p, -1) for p in every),
            what="every partition committed once (the group is working)",
            timeout=60,
        )
        time.sleep(2.0)
        theirs = owned(logs[1])
        if scenario == "join-then-leave":
            spawn(logs[2])
            wait_for(lambda: "joining group" in logs[2].read_text(), what="the third member joining", timeout=60)
            time.sleep(0.2)
        t0 = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        if scenario == "leave+join":
            spawn(logs[2])
        leaving.wait(60)  # it commits what it read before it goes: only later commits are someone else's
        before = committed(world, group)
        moved: dict[int, float] = {}
        while len(moved) < len(theirs):
            now = committed(world, group)
            for p in theirs:
                if p not in moved and now.get(p, -1) > before.get(p, -1):
                    moved[p] = time.monotonic() - t0
            if time.monotonic() - t0 > 180:
                raise SystemExit(f"{protocol}: partitions {sorted(theirs - set(moved))} never read again")
            time.sleep(0.05)
        return max(moved.values())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0, help="live events/s during the runs")
    parser.add_argument("--outputs", type=Path, default=None)
    args = parser.parse_args(argv)
    outputs_file = args.outputs or find_local_outputs()
    settings = load_settings(outputs_file=outputs_file)
    results: dict[tuple[str, str], list[float]] = {}
    outputs = json.loads(Path(outputs_file).read_text())
    with IsolatedWorld(outputs, settings, tag="b", partitions=None, strict=False) as world:
        sinks = world.new_pipeline("rebalance")
        with open(world.private_dir / "producer.log", "wb") as out:
            producer = subprocess.Popen(
                sinks.command("produce", "--rate", str(args.rate), "--duration", "3600"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            for i in range(args.repeat):
                for scenario in SCENARIOS:
                    for protocol in ("classic", "consumer"):
                        seconds = one_run(world, sinks, protocol, scenario, str(i))
                        results.setdefault((scenario, protocol), []).append(seconds)
                        print(
                            f"run {i + 1} {scenario:<16} {protocol:<9} partitions of the leaving member read "
                            f"again after {seconds:.2f} s",
                            flush=True,
                        )
        finally:
            producer.send_signal(signal.SIGTERM)
            producer.wait(60)
    for (scenario, protocol), values in results.items():
        print(
            f"median {scenario:<16} {protocol:<9} {statistics.median(values):.2f} s  "
            f"(runs: {', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
