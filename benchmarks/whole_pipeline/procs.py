"""Child processes with exact resource accounting, and CPU snapshots of the whole machine.

How CPU and memory of a pipeline process are measured, with no extra package (psutil):

* CPU: the benchmark starts the real CLI with ``subprocess.Popen`` and reaps it with
  ``os.wait4``, which returns the kernel's ``rusage`` of that child at exit: user +
  system CPU seconds, exact, nothing sampled. The pipeline processes start no children
  of their own, so the figures are theirs alone.
* Peak memory: ``VmHWM`` (the resident-set high-water mark) from ``/proc/<pid>/status``,
  read every 100 ms while the process runs; the last reading is taken at most 100 ms
  before it exits. Not ``ru_maxrss``: the kernel carries the parent's high-water mark
  over into a forked (or vforked) child until ``exec``, so ``ru_maxrss`` reported the
  benchmark's own RSS for every child (the measurement is in docs/decisions.md).

The services (Kafka, PostgreSQL, OpenSearch) are not our children: their CPU is read
from ``/proc/<pid>/stat`` before and after a phase, for each service the process devstack
started (its pid file) and every descendant (for PostgreSQL including the CPU of
backends that exited meanwhile, which the postmaster accumulates). Another checkout's
stack on the same machine is not counted; whatever other users of this stack did during
the phase is, and is reported as such.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks.whole_pipeline.records import PhaseUsage, ProcessUsage
from devstack.layout import load_layout
from devstack.services import service_pids

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ChildFailed(RuntimeError):
    """A pipeline process exited non-zero or had to be killed; the message carries its log tail."""


@dataclass
class Child:
    """A started process, its log file, its start time and its peak RSS seen so far."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    peak_rss_kib: int = 0
    reaped: bool = False

    def watch_memory(self, interval: float = 0.1) -> None:
        """Follow ``VmHWM`` in a daemon thread until the process is gone (see the module docstring)."""

        def loop() -> None:
            path = f"/proc/{self.proc.pid}/status"
            while not self.reaped:
                try:
                    with open(path) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
                                break
                        else:
                            return  # a zombie has no memory any more: the last reading stands
                except (OSError, ValueError):
                    return
                time.sleep(interval)

        threading.Thread(target=loop, name=f"rss-{self.name}", daemon=True).start()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn(name: str, command: Sequence[str], log: Path, *, cwd: Path | None = None) -> Child:
    """Start ``command`` with stdout+stderr appended to ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    child = Child(name, proc, log, time.monotonic())
    child.watch_memory()
    return child


def reap(child: Child, block: bool = False) -> ProcessUsage | None:
    """The child's usage if it has exited (reaping it), else None; ``block`` waits for the exit."""
    pid, status, usage = os.wait4(child.proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    child.proc.returncode = code  # Popen must not wait for it again
    child.reaped = True
    return ProcessUsage(
        returncode=code,
        wall_s=time.monotonic() - child.started,
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        max_rss_mib=child.peak_rss_kib / 1024,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
    )


def wait_all(children: Sequence[Child], timeout: float, *, check: bool = True) -> list[ProcessUsage]:
    """Wait for every child (polling ``wait4`` every 20 ms); on timeout terminate them and fail."""
    results: dict[int, ProcessUsage] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(children):
        for i, child in enumerate(children):
            if i not in results:
                usage = reap(child, block=False)
                if usage is not None:
                    results[i] = usage
        if len(results) == len(children):
            break
        if time.monotonic() > deadline:
            stop_all([c for i, c in enumerate(children) if i not in results])
            raise ChildFailed(
                f"{', '.join(c.name for i, c in enumerate(children) if i not in results)} did not finish "
                f"within {timeout:.0f} s; last output:\n" + children[0].log_tail()
            )
        time.sleep(0.02)
    ordered = [results[i] for i in range(len(children))]
    if check:
        for child, usage in zip(children, ordered, strict=True):
            if usage.returncode != 0:
                raise ChildFailed(f"{child.name} exited {usage.returncode}; last output:\n{child.log_tail()}")
    return ordered


def stop(child: Child, timeout: float = 60.0) -> ProcessUsage:
    """SIGTERM (the pipeline finishes its batch, commits and exits 0), then wait and reap."""
    _signal(child, signal.SIGTERM)
    return wait_all([child], timeout)[0]


def stop_all(children: Sequence[Child], grace: float = 20.0) -> None:
    """Terminate children we started (by their pid, never by name), killing them after ``grace`` s."""
    alive = [c for c in children if c.proc.returncode is None]
    for child in alive:
        _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [c for c in alive if reap(c, block=False) is None]
        time.sleep(0.05)
    for child in alive:
        _signal(child, signal.SIGKILL)
        reap(child, block=True)


def _signal(child: Child, signum: int) -> None:
    """Signal a child that has not been reaped (its pid is still ours)."""
    if child.proc.returncode is None:
        try:
            child.proc.send_signal(signum)
        except ProcessLookupError:
            pass


def pids() -> Iterator[str]:
    """The ids of the processes running now (``/proc`` entries)."""
    return (entry for entry in os.listdir("/proc") if entry.isdigit())


# --- the machine ---------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user/nice
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its children it has reaped) from ``/proc/PID/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # ppid is field 4 of stat(5); utime stime cutime cstime fields 14-17: here 1 and 11-14 after pid and comm
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return int(fields[1]), ticks / CLOCK_TICKS


def tree_cpu(roots: Mapping[str, int | None], stats: Mapping[int, tuple[int, float]]) -> dict[str, float]:
    """CPU seconds of each named root process and all its descendants (0 for a root that is not running).

    ``stats``: pid -> (parent pid, CPU seconds) of every process. A child's CPU moves into its
    parent's reaped-children figures when it exits, so the sum stays continuous.
    """
    owner: dict[int, str] = {pid: name for name, pid in roots.items() if pid is not None}

    def service_of(pid: int) -> str | None:
        seen: list[int] = []
        while pid not in owner and pid in stats and pid not in seen and pid > 1:
            seen.append(pid)
            pid = stats[pid][0]
        name = owner.get(pid)
        for visited in seen:
            if name is not None:
                owner[visited] = name
        return name

    out = dict.fromkeys(roots, 0.0)
    for pid, (_parent, seconds) in stats.items():
        name = service_of(pid)
        if name is not None:
            out[name] += seconds
    return out


def service_cpu() -> dict[str, float]:
    """CPU seconds consumed so far by each service of the local stack (devstack's processes and their
    children; 0 for a service that is not running here, such as a remote one)."""
    stats = {int(pid): stat for pid in pids() if (stat := _proc_stat(pid)) is not None}
    return tree_cpu(service_pids(load_layout()), stats)


@dataclass
class Snapshot:
    """Machine and service CPU counters at one instant."""

    at: float
    busy: float
    total: float
    services: dict[str, float]
    load: tuple[float, float, float]
    waited_s: float = 0.0
    """How long the phase waited for the load to settle before this snapshot (see :func:`settle`)."""

    @classmethod
    def take(cls) -> Snapshot:
        busy, total = machine_cpu()
        return cls(time.monotonic(), busy, total, service_cpu(), os.getloadavg())


NOISY_LOAD: Final = 1.5
"""A phase that starts with a higher 1-minute load average is marked noisy: on the 2-core
development machine that is more than half of it busy with something else."""


SETTLE_MAX_S: Final = 120.0
"""How long a phase waits at most for the 1-minute load to fall to ``NOISY_LOAD``: the
load average forgets with a time constant of a minute, so the benchmark's own previous
phase (two busy cores) has faded below 1.5 within about a minute."""


def settle(
    load: Callable[[], float],
    *,
    threshold: float = NOISY_LOAD,
    max_wait_s: float = SETTLE_MAX_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = 1.0,
) -> float:
    """Wait until ``load()`` is at most ``threshold`` or ``max_wait_s`` have passed; return the seconds waited.

    Why: a phase that starts on a busy machine measures the other work too. The phase
    still runs when the load stays high (another user's work does not end on request);
    it is then marked noisy by :func:`phase_usage`.
    """
    start = clock()
    while load() > threshold and clock() - start < max_wait_s:
        sleep(min(poll_s, max(0.0, max_wait_s - (clock() - start))))
    return clock() - start


def phase_usage(before: Snapshot, after: Snapshot) -> PhaseUsage:
    """Machine CPU use and per-service CPU seconds between two snapshots."""
    wall = after.at - before.at
    total = after.total - before.total
    return PhaseUsage(
        wall_s=round(wall, 3),
        machine_busy_pct=round(100 * (after.busy - before.busy) / total, 1) if total > 0 else None,
        machine_busy_cores=round((after.busy - before.busy) / wall, 2) if wall > 0 else None,
        cores=os.cpu_count() or 1,
        service_cpu_s={k: round(after.services[k] - before.services.get(k, 0.0), 2) for k in after.services},
        load_average_before=list(before.load),
        load_average_after=list(after.load),
        noisy=before.load[0] > NOISY_LOAD,
        settle_wait_s=round(before.waited_s, 1),
    )


class ProcessCpuSampler(threading.Thread):
    """CPU seconds, over a phase, of the processes named ``comm`` whose command line contains ``needle``.

    Why sampling (every ``interval``): PostgreSQL backends of the benchmark's own database
    (their process title names the database) are not our children and exit when the
    consumer closes its connection, before the phase ends; reading them periodically keeps
    their CPU up to at most one interval before they exit. A process already running at
    the first scan counts from that scan; one started later counts from zero.
    """

    def __init__(self, comm: str, needle: str, interval: float = 0.5) -> None:
        super().__init__(name="process-cpu-sampler", daemon=True)
        self.comm = comm
        self.needle = needle
        self.interval = interval
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._halt = threading.Event()
        self._scans = 0

    def _scan(self) -> None:
        for pid in pids():
            try:
                if pid not in self.last:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() != self.comm:
                            continue
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if self.needle.encode() not in f.read():
                            continue
                info = _proc_stat(pid)
            except OSError:
                continue
            if info is None:
                continue
            if pid not in self.last:
                self.first[pid] = info[1] if self._scans == 0 else 0.0
            self.last[pid] = info[1]
        self._scans += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self._scan()
            self._halt.wait(self.interval)

    def stop(self) -> float:
        """Stop, take a last scan, and return the matching processes' CPU seconds during the phase."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)
        self._scan()
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)
