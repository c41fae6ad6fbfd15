"""Progress as a user sees it: a live display on a terminal, JSON or plain log lines elsewhere; and `pipeline run`
ending with the report's path.

The terminal is a real pseudo-terminal (``os.openpty``), so the program decides by itself
that it is on one, exactly as in a shell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.process_control import count_events
from tests.support.terminal import on_terminal
from tests.support.world import IsolatedPipeline


def test_on_a_terminal_produce_and_consume_show_a_live_display(world: IsolatedPipeline) -> None:
    world.cli("schema")
    code, produced = on_terminal(world.command("produce", "--events", "40000"))
    assert code == 0, produced[-2000:]
    assert re.search(r"produce .*40,000/40,000 .*events sent/s", produced), produced[-2000:]
    assert "produce: sent 40000, delivered 40000" in produced

    code, consumed = on_terminal(world.command("consume", "--drain", "--batch-size", "2000"))
    assert code == 0, consumed[-2000:]
    assert re.search(r"consume .*40,000/40,000 .*messages/s .*stored 40,000, dead letters 0, lag 0", consumed), (
        consumed[-3000:]
    )
    assert "ETA" in consumed
    assert count_events(world) == 40000


def test_off_a_terminal_progress_is_log_lines_json_with_json_logs_and_nothing_with_quiet(
    world: IsolatedPipeline,
) -> None:
    world.cli("schema")
    plain = world.cli("produce", "--events", "5000")
    assert re.search(
        r" INFO pipeline\.progress: produce: [\d,]+ of 5,000 events sent \([\d,]+/s\), "
        r"in flight [\d,]+, failed 0",
        plain.stderr,
    ), plain.stderr[-2000:]
    assert "\x1b[" not in plain.stderr + plain.stdout

    as_json = world.cli("--json-logs", "consume", "--drain")
    records = [json.loads(line) for line in as_json.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(
        r["logger"] == "pipeline.jobs.consume" and r["message"].startswith("done: 5000 messages") for r in records
    )
    produced = world.cli("--json-logs", "produce", "--events", "3000")
    figures = [json.loads(line).get("progress") for line in produced.stderr.splitlines()]
    assert any(f and f["task"] == "produce" and f["total"] == 3000 for f in figures), produced.stderr[-2000:]

    quiet = world.cli("-q", "consume", "--drain")
    assert quiet.stderr == "" and count_events(world) == 8000


def test_a_slow_live_producer_shows_progress_while_it_runs(world: IsolatedPipeline) -> None:
    # At 40 events/s the periodic records (every 5 s) come long before a few thousand
    # messages have been sent: they must count them, not wait for a round number.
    produced = world.cli("--json-logs", "produce", "--rate", "40", "--duration", "12", timeout=120)
    figures = [json.loads(line).get("progress") for line in produced.stderr.splitlines() if line.strip()]
    done = [f["done"] for f in figures if f and f["task"] == "produce"]
    final = re.search(r"produce: sent (\d+),", produced.stdout)
    assert final is not None, produced.stdout
    sent = int(final.group(1))
    assert len(done) >= 2 and done[-1] == sent, produced.stderr[-2000:]
    assert any(0 < d < sent for d in done[:-1]), done


def test_run_prints_the_report_path_and_writes_it(world: IsolatedPipeline, tmp_path: Path) -> None:
    page = tmp_path / "out" / "report.html"
    result = world.cli("run", "--events", "2000", "--report", str(page))
    assert result.stdout.rstrip().endswith(f"report: {page} (open it in a browser)")
    assert page.stat().st_size > 1_000_000 and "Clickstream report" in page.read_text()
    assert count_events(world) == 2000
