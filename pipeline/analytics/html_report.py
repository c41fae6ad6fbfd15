"""The summary as one self-contained HTML file: KPI tiles and interactive charts, no network needed.

Pure: a :class:`Summary` in, a string out. Charts are Plotly figures (validated by
Plotly's Python figure classes, so a misspelt property fails here rather than in a
browser), drawn by plotly.js, whose minified bundle ships in the Plotly wheel and is
inlined into the file: the report opens from a disk, a mail attachment or an
air-gapped laptop. Nothing is fetched (no CDN, no map tiles, no fonts), which is why
countries are a bar chart rather than a map: Plotly's maps load their shapes from the
network.

Every value that came from the data (page paths, browsers, countries) reaches the page
either through ``html.escape`` or inside the figures' JSON, whose ``<``, ``>`` and ``&``
are written as ``\\u`` escapes so no string can close the ``<script>`` that holds it.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from pipeline.analytics.summary import SPLITS, Summary

COLORS: Final = ("#3b6fd8", "#e07b39", "#2f9e77", "#c2417a", "#7a5cc4", "#8c8c8c")
CHART_IDS: Final = ("traffic", "rates", "revenue", "funnel", "country", "landing", "exit", "device_type", "browser")
"""One ``<div class="chart">`` per id, in page order; the browser test expects each drawn."""

_WIDE: Final = frozenset({"traffic"})
_SPLIT_TITLES: Final = {
    "device_type": "Sessions by device",
    "browser": "Sessions by browser",
    "country": "Sessions by country (top 20)",
}


@functools.lru_cache(maxsize=1)
def plotly_bundle() -> str:
    """plotly.js, minified, from the installed Plotly wheel."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _num(value: Decimal | int | float | None) -> float | None:
    return None if value is None else float(value)


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "y": 0.97, "yanchor": "top", "font": {"size": 16}},
        "margin": {"l": 60, "r": 30, "t": 80, "b": 45},
        "colorway": list(COLORS),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        **extra,
    }


def _hours(s: Summary) -> list[str]:
    return [h.bucket.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") for h in s.hourly]


def _bars(title: str, labels: Sequence[str], values: Sequence[int], name: str) -> dict[str, Any]:
    """Horizontal bars, largest on top."""
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": name,
                "x": list(values)[::-1],
                "y": list(labels)[::-1],
                "marker": {"color": COLORS[0]},
                "hovertemplate": "%{y}: %{x:,}<extra></extra>",
            }
        ],
        "layout": _layout(
            title,
            yaxis={"type": "category", "dtick": 1, "tickfont": {"size": 11}},
            xaxis={"title": {"text": name}},
            showlegend=False,
            margin={"l": 170, "r": 30, "t": 60, "b": 45},
        ),
    }


def figures(s: Summary) -> dict[str, dict[str, Any]]:
    """Chart id -> Plotly figure (``data`` and ``layout``), in ``CHART_IDS`` order."""
    hours = _hours(s)
    date_axis = {"type": "date"}
    out: dict[str, dict[str, Any]] = {
        "traffic": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "sessions started",
                    "x": hours,
                    "y": [h.sessions_started for h in s.hourly],
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "active users",
                    "x": hours,
                    "y": [h.active_users for h in s.hourly],
                },
                {
                    "type": "bar",
                    "name": "page views",
                    "x": hours,
                    "y": [h.page_views for h in s.hourly],
                    "yaxis": "y2",
                    "opacity": 0.35,
                },
            ],
            "layout": _layout(
                "Sessions, users and page views per hour (UTC)",
                xaxis=date_axis,
                yaxis={"title": {"text": "sessions / users"}, "rangemode": "tozero"},
                yaxis2={
                    "title": {"text": "page views"},
                    "overlaying": "y",
                    "side": "right",
                    "rangemode": "tozero",
                    "showgrid": False,
                },
            ),
        },
        "rates": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "x": hours,
                    "connectgaps": False,
                    "y": [_num(getattr(h, attr)) for h in s.hourly],
                }
                for name, attr in (
                    ("bounce", "bounce_rate"),
                    ("engagement", "engagement_rate"),
                    ("conversion", "conversion_rate"),
                )
            ],
            "layout": _layout(
                "Bounce, engagement, conversion per hour",
                xaxis=date_axis,
                yaxis={"tickformat": ".0%", "range": [0, 1], "title": {"text": "share of sessions"}},
            ),
        },
        "revenue": {
            "data": [
                {
                    "type": "bar",
                    "name": "revenue",
                    "x": hours,
                    "y": [float(h.revenue) for h in s.hourly],
                    "marker": {"color": COLORS[2]},
                    "hovertemplate": "%{x}: %{y:,.2f}<extra></extra>",
                }
            ],
            "layout": _layout(
                "Revenue per hour",
                xaxis=date_axis,
                yaxis={"title": {"text": "revenue"}, "rangemode": "tozero"},
                showlegend=False,
            ),
        },
        "funnel": {
            "data": [
                {
                    "type": "funnel",
                    "name": "sessions",
                    "y": ["page view", "add to cart", "purchase"],
                    "x": [s.funnel.page_view, s.funnel.add_to_cart, s.funnel.purchase],
                    "texttemplate": "%{value:,} (%{percentPrevious:.0%} of previous)",
                    "marker": {"color": list(COLORS[:3])},
                }
            ],
            "layout": _layout("Funnel (sessions reaching each step)", showlegend=False),
        },
        "landing": _bars(
            "Top landing pages",
            [p.page_path for p in s.top_landing_pages],
            [p.sessions for p in s.top_landing_pages],
            "sessions",
        ),
        "exit": _bars(
            "Top exit pages",
            [p.page_path for p in s.top_exit_pages],
            [p.sessions for p in s.top_exit_pages],
            "sessions",
        ),
    }
    for column in SPLITS:
        shares = s.splits.get(column, [])
        labels, values = [x.value for x in shares], [x.sessions for x in shares]
        if column == "country":
            out[column] = _bars(_SPLIT_TITLES[column], labels, values, "sessions")
        else:
            out[column] = {
                "data": [
                    {
                        "type": "pie",
                        "hole": 0.45,
                        "labels": labels,
                        "values": values,
                        "sort": False,
                        "textinfo": "label+percent",
                    }
                ],
                "layout": _layout(_SPLIT_TITLES[column], showlegend=False),
            }
    return {chart: _validated(out[chart]) for chart in CHART_IDS}


def _validated(figure: dict[str, Any]) -> dict[str, Any]:
    """The figure as plotly.js reads it, after Plotly's own schema check of every property."""
    from plotly.graph_objects import Figure

    return Figure(figure).to_plotly_json()  # type: ignore[no-any-return]


def script_json(value: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators in raw form."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays, should Plotly hand any back
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _pct(value: Decimal | None) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def _kpis(s: Summary) -> list[tuple[str, str]]:
    k = s.kpis
    seconds = "–" if k.avg_duration_s is None else f"{float(k.avg_duration_s):,.0f} s"
    median = "–" if k.median_duration_s is None else f"{float(k.median_duration_s):,.0f} s"
    pages = "–" if k.pages_per_session is None else f"{float(k.pages_per_session):.2f}"
    return [
        ("sessions", f"{k.sessions:,}"),
        ("users", f"{k.users:,}"),
        ("revenue", f"{k.revenue:,.2f}"),
        ("conversion", _pct(k.conversion_rate)),
        ("engagement", _pct(k.engagement_rate)),
        ("bounce", _pct(k.bounce_rate)),
        ("avg duration", seconds),
        ("median duration", median),
        ("pages / session", pages),
    ]


_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f6fa;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c5cbe0;font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(9,1fr);gap:10px;padding:16px 28px 0}
.kpi{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi .v{font-size:20px;font-weight:600}.kpi .k{font-size:12px;color:#5b6478;text-transform:uppercase}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:14px;padding:16px 28px 28px}
.chart{background:#fff;border-radius:8px;height:380px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.chart.wide{grid-column:span 2}
footer{padding:0 28px 24px;color:#5b6478;font-size:12px}
"""

_DRAW: Final = """
(function(){
  var figures = JSON.parse(document.getElementById('figures').textContent);
  var config = {displaylogo:false, responsive:true, modeBarButtonsToRemove:['sendDataToCloud']};
  var drawn = Object.keys(figures).map(function(id){
    var f = figures[id];
    return Plotly.newPlot(document.getElementById('chart-' + id), f.data, f.layout, config);
  });
  Promise.all(drawn).then(function(){ document.body.setAttribute('data-charts-drawn', String(drawn.length)); });
})();
"""


def render_html(s: Summary, *, generated_at: dt.datetime, bundle: str | None = None) -> str:
    """The whole report page; ``bundle`` replaces plotly.js (tests that do not draw)."""
    tiles = "".join(
        f'<div class="kpi"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
        for k, v in _kpis(s)
    )
    charts = "".join(
        f'<div class="chart{" wide" if chart in _WIDE else ""}" id="chart-{chart}" data-chart="{chart}"></div>'
        for chart in CHART_IDS
    )
    window = (
        f"Sessions started {s.since:%Y-%m-%d %H:%M} – {s.until:%Y-%m-%d %H:%M} UTC "
        f"(the last {s.hours} hour{'s' if s.hours != 1 else ''})"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Clickstream report</title><style>{_STYLE}</style>"
        f"<script>{plotly_bundle() if bundle is None else bundle}</script></head><body>"
        f"<header><h1>Clickstream report</h1><p>{html.escape(window)}</p></header>"
        f'<section class="kpis">{tiles}</section><section class="charts">{charts}</section>'
        f"<footer>Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC from PostgreSQL by <code>pipeline report</code>. "
        "Session metrics are defined in pipeline/sessions/columns.py.</footer>"
        f'<script type="application/json" id="figures">{script_json(figures(s))}</script>'
        f"<script>{_DRAW}</script></body></html>\n"
    )
