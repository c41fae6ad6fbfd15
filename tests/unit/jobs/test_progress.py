"""Progress: which mode a process gets, what the live display and the log lines say, JSON log records."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rich.console import Console

from pipeline.jobs import progress
from pipeline.jobs.progress import JsonFormatter, Mode, Progress, choose_mode, eta_text


@pytest.mark.parametrize(
    ("json_logs", "quiet", "terminal", "mode"),
    [
        (False, False, True, Mode.LIVE),
        (False, False, False, Mode.LOG),
        (True, False, True, Mode.LOG),
        (False, True, True, Mode.QUIET),
        (True, True, False, Mode.QUIET),
    ],
)
def test_the_live_display_is_only_for_a_terminal_without_json_logs_or_quiet(
    json_logs: bool, quiet: bool, terminal: bool, mode: Mode
) -> None:
    assert choose_mode(json_logs=json_logs, quiet=quiet, terminal=terminal) is mode


def test_eta_is_the_remainder_at_the_current_rate() -> None:
    assert eta_text(3_000, 1_000.0) == "ETA 0:00:03"
    assert eta_text(7_200_000, 1_000.0) == "ETA 2:00:00"
    assert eta_text(10, 0.0) == "ETA -" and eta_text(0, 5.0) == "done"


def test_log_mode_writes_a_line_with_the_figures(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "_mode", Mode.LOG)
    counter = {"n": 0}
    task = Progress(
        "produce", lambda: (counter["n"], {"in flight": 12, "failed": 0}), total=5_000, unit="events sent", every_s=3600
    )
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        counter["n"] = 2_500
        task.tick(force=True)
        counter["n"] = 5_000
        task.done()
        task.done()
    record, final = [r for r in caplog.records if r.name == "pipeline.progress"]
    assert final.getMessage().startswith("produce: 5,000 of 5,000 events sent (")
    assert record.getMessage().startswith("produce: 2,500 of 5,000 events sent (")
    assert record.getMessage().endswith("/s), in flight 12, failed 0")
    figures = record.progress  # type: ignore[attr-defined]
    assert (figures["done"], figures["total"], figures["in flight"]) == (2_500, 5_000, 12)


def test_json_records_carry_the_progress_figures() -> None:
    record = logging.LogRecord("pipeline.progress", logging.INFO, __file__, 1, "consume: %s", ("x",), None)
    record.progress = {"done": 3, "lag": 7}  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "consume: x" and line["progress"] == {"done": 3, "lag": 7}
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


def test_the_live_display_shows_counts_rate_eta_and_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(progress, "_mode", Mode.LIVE)
    monkeypatch.setattr(progress, "_console", Console(file=screen, force_terminal=True, width=160))
    counter = {"n": 0}
    task = Progress(
        "consume",
        lambda: (counter["n"], {"stored": counter["n"] - 5, "lag": 1_000}),
        total=3_000,
        unit="messages",
        every_s=3600,
    )
    counter["n"] = 2_000
    task.tick(force=True)
    task.done()
    shown = screen.getvalue()
    assert "consume" in shown and "2,000/3,000" in shown and "messages/s" in shown
    assert "ETA 0:" in shown and "stored 1,995, lag 1,000" in shown


def test_quiet_mode_shows_nothing(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress, "_mode", Mode.QUIET)
    with caplog.at_level(logging.DEBUG):
        task = Progress("produce", lambda: (1, {}), every_s=0.0)
        task.tick(force=True)
        task.done()
    assert not [r for r in caplog.records if r.name == "pipeline.progress"]
