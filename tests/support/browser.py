"""Open a local HTML file in Debian's headless Chromium with networking off, and report what it drew.

Playwright drives the browser (``executable_path`` is Debian's ``/usr/bin/chromium``; no
browser is downloaded). The page runs in a fresh profile, offline, and every request
that is not the file itself is aborted and recorded, so a report that needs the network
shows up as a recorded request and as charts that never draw.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_CHART_STATE = """
(id) => {
  const el = document.querySelector('[data-chart="' + id + '"]');
  if (!el) return null;
  const svg = el.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = Array.from(el.querySelectorAll('g.trace path, g.trace rect')).filter((m) => {
    const b = m.getBBox();
    return b.width > 0 && b.height > 0;
  });
  return {plotted: el.classList.contains('js-plotly-plot'), width: box.width, height: box.height,
          traces: el.querySelectorAll('g.trace').length, marks: marks.length,
          data: el.data ? el.data.map(
            (t) => ({type: t.type, x: t.x, y: t.y, labels: t.labels, values: t.values})) : []};
}
"""


@dataclass
class PageReport:
    charts: dict[str, dict[str, Any]]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """URLs the page tried to fetch besides the file itself (all aborted)."""


def draw_offline(page_file: Path, chart_ids: list[str], screenshot: Path, *, timeout_s: float = 120) -> PageReport:
    """Load ``page_file``, wait until every chart id has a Plotly SVG, screenshot the full page."""
    if shutil.which(CHROMIUM) is None:
        raise AssertionError(
            f"{CHROMIUM} not found: Debian's chromium package is needed (scripts/setup.sh installs it)"
        )
    url = page_file.resolve().as_uri()
    report = PageReport(charts={})
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                offline=True,
                viewport={"width": 1400, "height": 900},
                device_scale_factor=1,
            )
            try:

                def refuse(route: Any) -> None:
                    if route.request.url != url:
                        report.requests.append(route.request.url)
                        route.abort()
                    else:
                        route.continue_()

                context.route("**/*", refuse)
                page = context.new_page()
                page.on("console", lambda m: report.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: report.console_errors.append(f"uncaught: {e}"))
                page.goto(url, wait_until="load")
                page.wait_for_function(
                    "(ids) => ids.every((id) => document.querySelector('[data-chart=\"' + id + '\"] svg.main-svg'))",
                    arg=chart_ids,
                    timeout=timeout_s * 1000,
                )
                report.charts = {chart: page.evaluate(_CHART_STATE, chart) for chart in chart_ids}
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return report
