"""The engine: visits arrive, wait in the agenda, and come out as wire bytes in time order.

Visits arrive as a Poisson process (optionally with a daily pattern); each visit in
flight sits in the agenda keyed by the time of its next event; the engine pops the
earliest, emits it, asks the walk for the visit's next step and schedules it. Events
therefore come out in time order across interleaved users, and memory is bounded by
the number of visits in flight. The tracker rule (``pipeline.simulation.tracker``)
assigns session ids from the resulting event times, exactly as a browser tracker would.

Everything random comes from one ``random.Random`` seeded from (seed, start, end), user
profiles from a hash of (seed, user index), the catalogue from its own fixed seed, so a
seed and a start/end time give a byte-identical stream in every run and process. The
hot loop builds wire bytes from pre-encoded segments (``pipeline.simulation.wire``),
never an ``Event`` object: that is what keeps it at a few microseconds per message.
"""

from __future__ import annotations

import math
import random
from typing import Any, Final

from pipeline.simulation.agenda import Agenda
from pipeline.simulation.calibration import visit_stats
from pipeline.simulation.config import SimulationConfig
from pipeline.simulation.record import SimulatedMessage
from pipeline.simulation.tracker import SESSION_TIMEOUT_MS, SessionTracker, advance
from pipeline.simulation.walk import Visit, Walker
from pipeline.simulation.wire import (
    COUNTER_LOW_MASK,
    ENCODE,
    MS_PER_MINUTE,
    counter_lows,
    event_id_head,
    event_id_prefix,
    minute_prefix,
    second_stamps,
)

# Traffic share by hour of day (UTC), mean 1.0: quiet nights, an evening peak.
_DIURNAL: Final = (
    0.45,
    0.36,
    0.30,
    0.28,
    0.30,
    0.38,
    0.52,
    0.70,
    0.86,
    0.96,
    1.02,
    1.08,
    1.12,
    1.10,
    1.06,
    1.08,
    1.14,
    1.24,
    1.38,
    1.50,
    1.52,
    1.36,
    1.06,
    0.76,
)
_DIURNAL_MEAN: Final = sum(_DIURNAL) / len(_DIURNAL)
_DIURNAL_NORM: Final = tuple(x / _DIURNAL_MEAN for x in _DIURNAL)
_DIURNAL_MAX: Final = max(_DIURNAL_NORM)

_WARMUP_MAX_EVENTS: Final = 500_000
_CHUNK: Final = 65_536
_join: Final = b"".join
# What the event loop makes of each event: nothing (a count), a message, or (time, key, value).
_COUNT: Final = 0
_MESSAGES: Final = 1
_TIMED: Final = 2


class Simulation:
    """The engine: ``take(n)`` returns the next events as messages, in time order.

    ``start_ms``: events before it are simulated (so visits are already in flight at the
    start, and the rate is steady from the first second) but not returned.
    ``end_ms``: no event after it is returned (None: endless).

    Randomness: one ``random.Random`` seeded from (seed, start, end). Mixing the times in
    means two runs with the same seed but different windows or live start times emit
    different event and session ids (they are different events: a downstream dedup must
    not merge them), while the same seed and times reproduce the stream exactly. User
    ids depend on the seed only, so users return across runs.
    """

    def __init__(self, config: SimulationConfig, start_ms: int, end_ms: int | None = None) -> None:
        self.config = config
        self.start_ms = start_ms
        self.end_ms = end_ms
        stats = visit_stats(config)
        self.mean_events_per_visit = stats.mean_events
        # Visits in flight at full realism = arrival rate x mean visit duration.
        natural = config.rate / stats.mean_events * stats.mean_duration_s
        self.time_scale = time_scale = min(1.0, config.max_concurrency / natural) if natural > 0 else 1.0
        daily_visits = config.rate * 86_400 / stats.mean_events
        users = config.users or int(min(config.max_users, max(100, daily_visits / config.visits_per_user_per_day)))
        rng = random.Random(f"{config.seed}:{start_ms}:{end_ms}")
        self._random = rng.random
        self._getrandbits = rng.getrandbits
        self.walker = walker = Walker(config, rng, time_scale, users)
        self._start = walker.start
        self._plan = walker.plan
        self._attr_segs = walker.segments.attribution
        self._agenda: Agenda[Visit] = Agenda()
        self._active: set[int] = set()
        self.tracker = SessionTracker(self._session_id)
        self._id_head = event_id_head(self._getrandbits(80))
        self._id_counter = 0
        self._id_prefix = event_id_prefix(self._id_head, 0)
        self._id_lows = counter_lows()
        self._visit_rate_per_ms = config.rate / stats.mean_events / 1000.0
        self._peak = _DIURNAL_MAX if config.diurnal else 1.0
        self._prune_every = SESSION_TIMEOUT_MS // 6
        # Warm-up long enough for most visits in flight at the start to have begun, but
        # bounded in simulated events so a high rate does not cost minutes of start-up.
        warmup_ms = int(min(4 * stats.p95_duration_s * time_scale, _WARMUP_MAX_EVENTS / config.rate) * 1000)
        self._arrival_f = float(start_ms - warmup_ms)
        self._next_arrival = start_ms - warmup_ms
        self._next_prune = self._next_arrival + self._prune_every
        self._advance_arrival()
        self._minute = -1
        self._minute_prefix = b""
        self._stamps = second_stamps()
        # Fast forward through the warm-up: visits are simulated, events discarded.
        while self._run(_CHUNK, start_ms - 1, _COUNT, []) == _CHUNK:
            pass

    def _session_id(self) -> str:
        return "s-%016x" % self._getrandbits(64)

    # --- arrivals -------------------------------------------------------------------
    def _advance_arrival(self) -> None:
        """Next visit arrival: homogeneous Poisson at the peak rate, thinned by the hour.

        Kept as float milliseconds so that many visits may arrive within one millisecond
        at high rates; the visit starts at the floor of it.
        """
        rng_random = self._random
        peak_rate = self._visit_rate_per_ms * self._peak
        t = self._arrival_f
        while True:
            t += -math.log(1.0 - rng_random()) / peak_rate
            if not self.config.diurnal:
                break
            hour = (int(t) // 3_600_000) % 24
            if rng_random() * _DIURNAL_MAX <= _DIURNAL_NORM[hour]:
                break
        self._arrival_f = t
        self._next_arrival = int(t)

    def _start_visit(self, at_ms: int) -> None:
        visit = self._start(self._active)
        if visit is None:
            return  # that user is already browsing; drop the arrival
        visit.session = self.tracker.checkout(visit.user_id)
        self._active.add(visit.user)
        self._agenda.push(at_ms, visit)

    # --- the event loop ---------------------------------------------------------------
    def peek_ms(self) -> int | None:
        """When the next event happens (admitting visits that arrive first), or None at the end."""
        agenda = self._agenda
        end = self.end_ms
        while True:
            arrival = self._next_arrival
            top = agenda.first
            if top is not None and top < arrival:
                return None if end is not None and top > end else top
            if end is not None and arrival > end:
                return top if top is not None and top <= end else None
            self._start_visit(arrival)
            self._advance_arrival()

    def take(self, limit: int, until_ms: int | None = None) -> list[SimulatedMessage]:
        """The next events, at most ``limit``, as messages (key and canonical wire bytes).

        Fewer (or none) when the simulation has ended, or (with ``until_ms``) when the
        next event is later than ``until_ms``. A batch per call, so that a consumer of
        the stream pays for its own loop once per batch, not once per event.
        """
        out: list[SimulatedMessage] = []
        self._run(limit, until_ms, _MESSAGES, out)
        return out

    def take_timed(self, limit: int, until_ms: int | None = None) -> list[tuple[int, bytes, bytes]]:
        """``take``, as (time in ms, key, wire bytes): what the fault injector needs."""
        out: list[tuple[int, bytes, bytes]] = []
        self._run(limit, until_ms, _TIMED, out)
        return out

    def count(self) -> int:
        """Simulate to ``end_ms`` without building any bytes: how many events are left.

        The same steps as ``take`` (the same random draws, so the same count), minus the
        formatting: what a calibration run wants.
        """
        if self.end_ms is None:
            raise ValueError("an endless simulation has no count")
        total = 0
        while (done := self._run(_CHUNK, None, _COUNT, [])) > 0:
            total += done
        return total

    def _run(self, limit: int, until_ms: int | None, form: int, out: list[Any]) -> int:
        """The event loop: up to ``limit`` events, each appended to ``out`` in ``form``; how many.

        Visits are admitted as they arrive and the earliest visit due takes its next step
        (``peek_ms`` is the same rule, without the step). One loop for a whole batch, its
        state in local variables: this is where the generator spends most of its time.
        """
        agenda = self._agenda
        pop, push = agenda.pop, agenda.push
        end = self.end_ms
        if until_ms is not None and (end is None or until_ms < end):
            end = until_ms
        append = out.append
        session_id = self._session_id
        attr_segs = self._attr_segs
        plan = self._plan
        max_events = self.config.max_events_per_visit
        stamps, lows, id_head = self._stamps, self._id_lows, self._id_head
        minute, prefix = self._minute, self._minute_prefix
        counter, id_prefix = self._id_counter, self._id_prefix
        done = 0
        while done < limit:
            top = agenda.first
            arrival = self._next_arrival
            if top is not None and top < arrival:
                if end is not None and top > end:
                    break
            elif end is not None and arrival > end:
                if top is None or top > end:
                    break
            else:
                self._start_visit(arrival)
                self._advance_arrival()
                continue
            done += 1
            at_ms, visit = pop()
            visit.left = left = visit.left - 1
            _, type_seg, page_seg, tail = visit.plan[left]
            previous = visit.session
            state = visit.session = advance(previous, at_ms, visit.landing, session_id)
            if not visit.head_seg or state[1] is not previous[1]:  # type: ignore[index]
                visit.head_seg = visit.user_seg + b',"session_id":' + ENCODE(state[1])
                visit.tail_seg = attr_segs[state[2]] + visit.device_seg
            visit.landing = None
            visit.emitted = emitted = visit.emitted + 1
            if form:
                this_minute = at_ms // MS_PER_MINUTE
                if this_minute != minute:
                    minute, prefix = this_minute, minute_prefix(this_minute)
                counter += 1
                low = counter & COUNTER_LOW_MASK
                if not low:
                    id_prefix = event_id_prefix(id_head, counter)
                # join, not %-formatting: twice as fast for nine pieces.
                value = _join((
                    id_prefix, lows[low], type_seg, prefix,
                    stamps[at_ms - minute * MS_PER_MINUTE], visit.head_seg, page_seg, visit.tail_seg, tail,
                ))  # fmt: skip
                append(SimulatedMessage(visit.key, value) if form == _MESSAGES else (at_ms, visit.key, value))
            if at_ms >= self._next_prune:
                self.tracker.prune(at_ms)
                self._next_prune = at_ms + self._prune_every
            if not left:
                if emitted >= max_events or not plan(visit):
                    self._active.discard(visit.user)
                    self.tracker.checkin(visit.user_id, state)
                    continue
                visit.left = left = len(visit.plan)
            push(at_ms + visit.plan[left - 1][0], visit)
        self._minute, self._minute_prefix = minute, prefix
        self._id_counter, self._id_prefix = counter, id_prefix
        return done
