"""The two ways to run the simulation: a backfill window, or live against the caller's clock.

* ``backfill(config, end_time, window)``: every message of the window, as fast as the
  caller pulls them.
* ``LiveStream(config, start).until(now)``: the messages whose time has come; the caller
  passes its clock reading, so the stream content never depends on when it is called.

Both run the engine (``pipeline.simulation.engine``) and, when faults are configured,
pass its events through the fault injector (``pipeline.simulation.faults``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator

from pipeline.simulation.config import SimulationConfig
from pipeline.simulation.engine import Simulation
from pipeline.simulation.epoch import from_ms, to_ms
from pipeline.simulation.faults import NO_FAULTS, FaultConfig, FaultInjector
from pipeline.simulation.record import SimulatedMessage


def backfill(
    config: SimulationConfig,
    end_time: _dt.datetime,
    *,
    window: _dt.timedelta = _dt.timedelta(hours=24),
    faults: FaultConfig = NO_FAULTS,
) -> Iterator[SimulatedMessage]:
    """Every message of the window ``(end_time - window, end_time]``, in time order.

    Valid events come out in ``occurred_at`` order across interleaved users; faults (if
    configured) add duplicates, hold some events back (late) and insert malformed
    messages. Deterministic: the same config, end_time, window and faults give the
    same messages, byte for byte. Pull lazily; use ``itertools.islice`` for a count.
    """
    end_ms = to_ms(end_time)
    start_ms = end_ms - int(window.total_seconds() * 1000) + 1
    sim = Simulation(config, start_ms, end_ms)
    pop = sim.pop
    if faults == NO_FAULTS:
        while (item := pop()) is not None:
            yield SimulatedMessage(item[1], item[2])
        return
    injector = FaultInjector(faults, config.seed)
    while (item := pop()) is not None:
        yield from injector.push(*item)
    yield from injector.flush()


class LiveStream:
    """Events as they happen: ``until(now)`` returns every message due by ``now``.

    The caller owns the clock (pass ``datetime.now(timezone.utc)`` in production, any
    sequence of instants in tests); the stream content depends only on the config,
    ``start`` and faults, never on when or how often ``until`` is called. For a flat
    ``--rate N`` pass ``SimulationConfig(rate=N, diurnal=False)``. At high rates dwell
    times are compressed (see ``SimulationConfig.max_concurrency``) so that memory
    stays bounded; session ids still follow the 30-minute rule on the actual times.
    """

    def __init__(self, config: SimulationConfig, start: _dt.datetime, *, faults: FaultConfig = NO_FAULTS) -> None:
        self.simulation = Simulation(config, to_ms(start))
        self._injector = FaultInjector(faults, config.seed) if faults != NO_FAULTS else None

    def next_due(self) -> _dt.datetime | None:
        """When the next event happens: how long a paced producer may sleep."""
        t = self.simulation.peek_ms()
        return None if t is None else from_ms(t)

    def until(self, now: _dt.datetime) -> list[SimulatedMessage]:
        """All messages whose time is at or before ``now``, in emission order."""
        now_ms = to_ms(now)
        pop = self.simulation.pop
        out: list[SimulatedMessage] = []
        injector = self._injector
        if injector is None:
            append = out.append
            while (item := pop(now_ms)) is not None:
                append(SimulatedMessage(item[1], item[2]))
            return out
        while (item := pop(now_ms)) is not None:
            out.extend(injector.push(*item))
        out.extend(injector.release(now_ms))
        return out
