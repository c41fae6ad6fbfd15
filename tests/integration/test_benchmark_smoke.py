"""The pipeline benchmark still runs end to end: ``python -m benchmarks.pipeline_bench --ci`` on the local stack.

Only that it exits 0 and writes its JSON report with every top-level section. No figure
is checked: timings on a shared machine say nothing about correctness, and the
benchmark compares them with its targets itself (PASS/MISS, never asserted). The run is
the real one at tiny sizes (20,000 events, 1,000 events/s for 3 s, one repeat, 5,000 events
through the delay proxies), in a private topic,
database and index prefix that the benchmark removes again; it takes about a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXPECTED_KEYS = {
    "benchmark",
    "mode",
    "started_at",
    "finished_at",
    "command",
    "machine",
    "versions",
    "settings",
    "limits",
    "producer",
    "drain",
    "freshness",
    "latency",
    "spread",
    "drain_repeats",
    "freshness_repeats",
    "cost",
    "ratios",
    "targets",
    "bottleneck",
    "phases",
    "files",
    "notes",
}


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_benchmark_ci_mode_exits_0_and_writes_its_report(outputs_path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.pipeline_bench",
            "--ci",
            "--outputs",
            str(outputs_path),
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-4000:]}"
    reports = sorted(tmp_path.glob("pipeline-bench-*.json"))
    assert len(reports) == 1, f"expected one JSON report in {tmp_path}, found {[p.name for p in reports]}"
    report = json.loads(reports[0].read_text())
    assert EXPECTED_KEYS <= set(report), f"missing top-level keys: {sorted(EXPECTED_KEYS - set(report))}"
