"""The live view of a consumer on a terminal: messages read, events stored, dead letters, lag, ETA.

It rides on the consumer's ``on_batch`` callback and a :class:`LagWatcher`, so the
consumer's loop is untouched. Off a terminal (or with ``--json-logs``/``--quiet``) there
is no view and the consumer's own periodic log lines report progress as before.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.config.settings import Settings
from pipeline.jobs.consume import ConsumeOptions, ConsumeStats
from pipeline.jobs.progress import Mode, Progress, mode
from pipeline.ops.group import LagWatcher

OnBatch = Callable[[ConsumeStats], None]


@contextmanager
def consumer_view(
    settings: Settings, options: ConsumeOptions, *, until_caught_up: bool
) -> Iterator[tuple[ConsumeOptions, OnBatch | None]]:
    """(options, on_batch) for a ConsumeLoop; with a live display, the consumer's log lines are switched off.

    ``until_caught_up``: the job ends when the group has no lag (``--drain``, ``pipeline
    run``), so the display's total is what was read plus the lag, and it shows an ETA.
    """
    if mode() is not Mode.LIVE:
        yield options, None
        return
    latest = ConsumeStats()
    lag = LagWatcher(settings.kafka, options.group, options.topic)

    def sample() -> tuple[int, dict[str, object]]:
        if until_caught_up and lag.value is not None:
            progress.set_total(latest.messages + lag.value)
        return latest.messages, {"stored": latest.events, "dead letters": latest.dead_letters, "lag": lag.value}

    def on_batch(stats: ConsumeStats) -> None:
        nonlocal latest
        latest = stats
        progress.tick()

    progress = Progress("consume", sample, unit="messages")
    try:
        yield dataclasses.replace(options, progress_every_s=math.inf), on_batch
    finally:
        lag.close()
        progress.done()
