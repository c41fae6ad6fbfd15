"""Progress of long jobs: a live display on a terminal, periodic log lines otherwise.

Three modes, chosen once per process by :func:`configure` from the command line:

* ``live``: stderr is a terminal and neither ``--json-logs`` nor ``--quiet`` was given.
  One ``rich`` display shows every running task (counts, rate, ETA when the total is
  known, and each task's own fields such as lag or dead letters); log records are
  printed above it by rich's handler so the two never garble each other.
* ``log``: stderr is not a terminal, or ``--json-logs``. Each task writes one INFO log
  line every few seconds; with ``--json-logs`` every log record is one JSON object and a
  progress record carries its figures as fields.
* ``quiet``: ``--quiet``. Only warnings and errors are logged; no progress at all.

A task samples the job's own counters: a helper thread does it every interval, so a job
that makes progress slowly (``--rate 5``) still shows it; :meth:`Progress.tick` from the
job's loop is cheap and may be called from any thread as often as wanted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress

log = logging.getLogger("pipeline.progress")

Sample = Callable[[], tuple[int, Mapping[str, object]]]
"""Returns (units done so far, extra figures to show) for a task."""

LOG_EVERY_S: Final = 5.0
LIVE_EVERY_S: Final = 0.25
_NOISY: Final = ("opensearch", "urllib3")


class Mode(str, Enum):
    LIVE = "live"
    LOG = "log"
    QUIET = "quiet"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, message, and a progress record's figures."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        figures = getattr(record, "progress", None)
        if isinstance(figures, dict):
            out["progress"] = figures
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


_mode: Mode | None = None
_console: Console | None = None


def choose_mode(*, json_logs: bool, quiet: bool, terminal: bool) -> Mode:
    if quiet:
        return Mode.QUIET
    if json_logs or not terminal:
        return Mode.LOG
    return Mode.LIVE


def configure(*, json_logs: bool = False, quiet: bool = False, debug: bool = False) -> Mode:
    """Set up logging for this process and choose how progress is shown; returns the mode."""
    global _mode, _console
    _mode = choose_mode(json_logs=json_logs, quiet=quiet, terminal=sys.stderr.isatty())
    handler: logging.Handler
    if _mode is Mode.LIVE:
        _console = Console(stderr=True)
        handler = RichHandler(console=_console, show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)
    return _mode


def mode() -> Mode:
    """The process's mode; without :func:`configure` (library use, tests) plain log lines."""
    return _mode or Mode.LOG


class _Board:
    """The one live display of the process, started with its first task and stopped after its last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rich: RichProgress | None = None
        self._tasks = 0

    def add(self, label: str, total: int | None) -> tuple[RichProgress, TaskID]:
        with self._lock:
            if self._rich is None:
                self._rich = RichProgress(
                    SpinnerColumn(),
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.fields[count]}"),
                    TextColumn("{task.fields[rate]}"),
                    TextColumn("{task.fields[eta]}"),
                    TextColumn("{task.fields[extra]}"),
                    console=_console or Console(stderr=True),
                    refresh_per_second=4,
                )
                self._rich.start()
            self._tasks += 1
            return self._rich, self._rich.add_task(label, total=total, count="", rate="", eta="", extra="")

    def remove(self) -> None:
        with self._lock:
            self._tasks -= 1
            if self._tasks == 0 and self._rich is not None:
                self._rich.stop()
                self._rich = None


_BOARD = _Board()


RATE_WINDOW_S: Final = 10.0
"""Rates (and so ETAs) are measured over this many recent seconds, so they follow changes."""


def eta_text(remaining: int, rate: float) -> str:
    if remaining <= 0:
        return "done"
    if rate <= 0:
        return "ETA -"
    seconds = int(remaining / rate + 0.5)
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _figures(fields: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in fields.items() if v is not None)


class Progress:
    """One task's progress: ``tick()`` often, ``done()`` once (also safe to call twice); ``done()``
    always reports the final figures, so even a task shorter than the interval leaves one line."""

    def __init__(
        self,
        label: str,
        sample: Sample,
        *,
        total: int | None = None,
        unit: str = "events",
        every_s: float | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self._sample = sample
        self._mode = mode()
        self._every = every_s if every_s is not None else (LIVE_EVERY_S if self._mode is Mode.LIVE else LOG_EVERY_S)
        self._started = self._last = time.monotonic()
        self._recent: list[tuple[float, int]] = [(self._started, 0)]
        self._total = total
        self._closed = False
        self._lock = threading.Lock()
        self._rich: tuple[RichProgress, TaskID] | None = None
        if self._mode is Mode.LIVE:
            self._rich = _BOARD.add(label, total)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._mode is not Mode.QUIET:
            self._ticker = threading.Thread(target=self._tick_until_done, name=f"progress-{label}", daemon=True)
            self._ticker.start()

    def _tick_until_done(self) -> None:
        while not self._stop.wait(self._every):
            self.tick()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def set_total(self, total: int | None) -> None:
        """The number of units the task will reach (known late, e.g. a backlog read from the lag)."""
        self._total = total

    def tick(self, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if self._closed or (not force and now - self._last < self._every * 0.9):
                return
            self._last = now
            self._report(now)

    def _rate(self, now: float, done: int) -> float:
        self._recent.append((now, done))
        while len(self._recent) > 2 and now - self._recent[1][0] >= RATE_WINDOW_S:
            self._recent.pop(0)
        then, before = self._recent[0]
        return (done - before) / max(now - then, 1e-9)

    def _report(self, now: float) -> None:
        done, fields = self._sample()
        rate = self._rate(now, done)
        if self._rich is not None:
            rich, task = self._rich
            total = self._total
            rich.update(
                task,
                completed=done,
                total=total,
                count=f"{done:,}" + (f"/{total:,}" if total else ""),
                rate=f"{rate:,.0f} {self.unit}/s",
                eta="" if total is None else eta_text(total - done, rate),
                extra=_figures(fields),
            )
        elif self._mode is Mode.LOG:
            of = f" of {self._total:,}" if self._total is not None else ""
            extra = _figures(fields)
            log.info(
                "%s: %s%s %s (%s/s)%s",
                self.label,
                f"{done:,}",
                of,
                self.unit,
                f"{rate:,.0f}",
                f", {extra}" if extra else "",
                extra={
                    "progress": {
                        "task": self.label,
                        "done": done,
                        "total": self._total,
                        "unit": self.unit,
                        "rate_per_s": round(rate, 1),
                        **dict(fields),
                    }
                },
            )

    def done(self) -> None:
        if self._closed:
            return
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        self.tick(force=True)  # the final figures, however short the task was
        if self._rich is not None:
            _BOARD.remove()
        self._closed = True
