"""Progress for long jobs: a live line on a terminal, plain periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger("pipeline.progress")


class Progress:
    """Call ``tick()`` often; it reports at most every ``every_s`` seconds."""

    def __init__(self, describe: Callable[[float], str], *, every_s: float | None = None) -> None:
        self._describe = describe
        self._tty = sys.stderr.isatty()
        self._every = every_s if every_s is not None else (0.5 if self._tty else 5.0)
        self._started = self._last = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        text = self._describe(now - self._started)
        if self._tty:
            sys.stderr.write("\r\x1b[2K" + text)
            sys.stderr.flush()
        else:
            log.info(text)

    def done(self) -> None:
        if self._tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
