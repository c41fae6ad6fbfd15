"""The summary as readable plain-text tables (pure: a Summary in, text out)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pipeline.analytics.summary import Summary


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def _num(value: Decimal | float | int | None, digits: int = 1) -> str:
    return "-" if value is None else f"{float(value):,.{digits}f}"


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, title: str) -> str:
    """Columns padded to their widest cell; the first column left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    out = [title, line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows] if rows else ["(none)"]
    return "\n".join(out)


def render_summary(s: Summary) -> str:
    k = s.kpis
    kpis = table(
        ["metric", "value"],
        [
            ["sessions", f"{k.sessions:,}"],
            ["users", f"{k.users:,}"],
            ["avg duration (s)", _num(k.avg_duration_s)],
            ["median duration (s)", _num(k.median_duration_s)],
            ["bounce rate", _pct(k.bounce_rate)],
            ["engagement rate", _pct(k.engagement_rate)],
            ["conversion rate", _pct(k.conversion_rate)],
            ["revenue", _money(k.revenue)],
            ["pages per session", _num(k.pages_per_session, 2)],
        ],
        title=f"Sessions started {s.since:%Y-%m-%d %H:%M} - {s.until:%Y-%m-%d %H:%M} UTC",
    )
    f = s.funnel
    funnel = table(
        ["step", "sessions", "of previous"],
        [
            ["page_view", f"{f.page_view:,}", "-"],
            ["add_to_cart", f"{f.add_to_cart:,}", _ratio(f.add_to_cart, f.page_view)],
            ["purchase", f"{f.purchase:,}", _ratio(f.purchase, f.add_to_cart)],
        ],
        title="Funnel",
    )
    landing = table(
        ["landing page", "sessions"],
        [[p.page_path, f"{p.sessions:,}"] for p in s.top_landing_pages],
        title="Top landing pages",
    )
    exits = table(
        ["exit page", "sessions"], [[p.page_path, f"{p.sessions:,}"] for p in s.top_exit_pages], title="Top exit pages"
    )
    hourly = table(
        ["hour (UTC)", "sessions", "users", "page views", "bounce", "engaged", "converted", "revenue"],
        [
            [
                f"{h.bucket:%m-%d %H:00}",
                f"{h.sessions_started:,}",
                f"{h.active_users:,}",
                f"{h.page_views:,}",
                _pct(h.bounce_rate),
                _pct(h.engagement_rate),
                _pct(h.conversion_rate),
                _money(h.revenue),
            ]
            for h in s.hourly
        ],
        title="By hour",
    )
    return "\n\n".join([kpis, funnel, landing, exits, hourly])


def _ratio(part: int, whole: int) -> str:
    return "-" if whole == 0 else f"{part / whole * 100:.1f}%"
