"""`pipeline report --html` from a real pipeline run, opened in headless Chromium with networking off.

Every chart must be drawn by the plotly.js inlined in the file (an SVG with at least one
visible mark), the page must log no error and request nothing, and the charts must carry
the numbers `pipeline summary --json` reads from the same PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.analytics.html_report import CHART_IDS
from tests.support.browser import draw_offline
from tests.support.world import IsolatedPipeline


def test_the_report_draws_every_chart_offline_with_the_summary_numbers(world: IsolatedPipeline, tmp_path: Path) -> None:
    world.cli("schema")
    world.cli("produce", "--events", "3000", "--window-hours", "6")
    world.cli("consume", "--drain")
    page = tmp_path / "report.html"
    printed = world.cli("report", "--html", str(page), "--hours", "8").stdout
    assert f"report: {page}" in printed
    numbers = json.loads(world.cli("summary", "--json", "--hours", "8").stdout)

    drawn = draw_offline(page, list(CHART_IDS), tmp_path / "report.png")

    assert drawn.requests == [], "the report tried to use the network"
    assert drawn.console_errors == []
    for chart, state in drawn.charts.items():
        assert state is not None, f"chart {chart} missing"
        assert state["plotted"] and state["width"] > 100 and state["height"] > 100, chart
        assert state["traces"] >= 1 and state["marks"] >= 1, f"chart {chart} drew nothing: {state}"
    funnel = numbers["funnel"]
    assert drawn.charts["funnel"]["data"][0]["x"] == [funnel["page_view"], funnel["add_to_cart"], funnel["purchase"]]
    hourly = numbers["hourly"]
    assert drawn.charts["traffic"]["data"][0]["y"] == [h["sessions_started"] for h in hourly]
    assert sum(drawn.charts["traffic"]["data"][0]["y"]) == numbers["kpis"]["sessions"] > 0
    landing = numbers["top_landing_pages"]
    assert drawn.charts["landing"]["data"][0]["y"] == [p["page_path"] for p in landing][::-1]
    assert (tmp_path / "report.png").stat().st_size > 50_000
