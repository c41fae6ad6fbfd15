"""How long and how busy a visit is under a config, measured by walking visits.

The engine needs these figures to turn ``SimulationConfig.rate`` (events per second)
into a visit arrival rate, to size the population and to decide how far to warm up.
They depend on every probability in the config, so a few thousand visits are walked
with a fixed private seed: simpler and more honest than a formula.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, replace

from pipeline.simulation.config import SimulationConfig
from pipeline.simulation.walk import Walker

_VISITS = 10_000  # about 1% standard error on the mean, paid once per process
_USERS = 1_000


@dataclass(frozen=True)
class VisitStats:
    """The shape of an average visit."""

    mean_events: float
    mean_duration_s: float
    p95_duration_s: float


def visit_stats(config: SimulationConfig) -> VisitStats:
    """Events and duration of a visit under ``config``; measured once per visit shape."""
    return _measure(_behaviour(config))


def _behaviour(config: SimulationConfig) -> SimulationConfig:
    """The config with everything that does not change a visit's shape normalised away.

    Used as the cache key, so runs that differ only in seed, rate or size share one
    measurement.
    """
    return replace(config, seed=0, rate=1.0, users=None, diurnal=False, max_users=1, max_concurrency=1)


@functools.lru_cache(maxsize=32)
def _measure(config: SimulationConfig) -> VisitStats:
    """Walk ``_VISITS`` visits at full realism, each on its own (no one else browsing)."""
    walker = Walker(config, random.Random("calibration"), 1.0, _USERS)
    no_one: frozenset[int] = frozenset()
    counts: list[int] = []
    durations: list[float] = []
    for _ in range(_VISITS):
        visit = walker.start(no_one)
        assert visit is not None  # nobody is busy, so every arrival starts a visit
        elapsed = 0
        while True:
            visit.left -= 1
            visit.emitted += 1
            if not visit.left:
                if visit.emitted >= config.max_events_per_visit or not walker.plan(visit):
                    break
                visit.left = len(visit.plan)
            elapsed += visit.plan[visit.left - 1][0]
        counts.append(visit.emitted)
        durations.append(elapsed / 1000.0)
    durations.sort()
    return VisitStats(sum(counts) / len(counts), sum(durations) / len(durations), durations[int(0.95 * len(durations))])
