"""The HTML report page, without a browser: what the data puts on the page stays data."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analytics.html_report import CHART_IDS, render_html, script_json
from pipeline.analytics.summary import SPLITS, Funnel, HourStats, Kpis, PageCount, Share, Summary

T0 = dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)


class Page(HTMLParser):
    """Script blocks (with their type) and the ids of chart elements, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.charts: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = attributes
            self.scripts.append((attributes, ""))
        if attributes.get("data-chart"):
            self.charts.append(str(attributes["data-chart"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def make_summary(paths: list[str], splits: dict[str, list[str]], hours: int = 3) -> Summary:
    return Summary(
        hours=hours,
        since=T0,
        until=T0 + dt.timedelta(hours=hours - 1, minutes=5),
        kpis=Kpis(
            sessions=12,
            users=7,
            avg_duration_s=Decimal("31.5"),
            median_duration_s=Decimal("12"),
            bounce_rate=Decimal("0.25"),
            engagement_rate=Decimal("0.5"),
            conversion_rate=None,
            revenue=Decimal("1234.50"),
            pages_per_session=Decimal("2.5"),
        ),
        funnel=Funnel(page_view=10, add_to_cart=4, purchase=1),
        top_landing_pages=[PageCount(p, 10 - n) for n, p in enumerate(paths)],
        top_exit_pages=[PageCount(p, 5) for p in paths[:3]],
        hourly=[
            HourStats(
                T0 + dt.timedelta(hours=h),
                h,
                h,
                3 * h,
                None if h == 0 else Decimal("0.5"),
                Decimal("0.25"),
                Decimal(0),
                Decimal("9.99"),
            )
            for h in range(hours)
        ],
        splits={c: [Share(v, 3) for v in values] for c, values in splits.items()},
    )


def parse(page: str) -> tuple[Page, dict[str, dict[str, object]]]:
    parsed = Page()
    parsed.feed(page)
    (blob,) = [text for attrs, text in parsed.scripts if attrs.get("id") == "figures"]
    return parsed, json.loads(blob)


texts = st.text(min_size=1, max_size=40) | st.sampled_from(
    ["</script>", "</SCRIPT ><b>", "<!--", "<script>alert(1)</script>", "a&amp;b", "\u2028"]
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(texts, min_size=1, max_size=10, unique=True),
    st.fixed_dictionaries({c: st.lists(texts, max_size=5, unique=True) for c in SPLITS}),
)
def test_values_from_the_data_never_leave_their_json(paths: list[str], splits: dict[str, list[str]]) -> None:
    page = render_html(make_summary(paths, splits), generated_at=T0, bundle="/* plotly */")
    parsed, figures = parse(page)
    assert [attrs.get("id") or attrs.get("type") for attrs, _ in parsed.scripts] == [None, "figures", None]
    assert parsed.charts == list(CHART_IDS) == list(figures)
    assert figures["landing"]["data"][0]["y"] == paths[::-1]  # type: ignore[index]
    assert figures["device_type"]["data"][0]["labels"] == splits["device_type"]  # type: ignore[index]
    assert figures["country"]["data"][0]["y"] == splits["country"][::-1]  # type: ignore[index]


def test_the_charts_carry_the_summary_numbers() -> None:
    s = make_summary(["/", "/p/1"], {"device_type": ["mobile", "desktop"], "browser": ["Chrome"], "country": ["DE"]})
    _, figures = parse(render_html(s, generated_at=T0, bundle=""))
    funnel = figures["funnel"]["data"][0]  # type: ignore[index]
    assert funnel["x"] == [10, 4, 1] and funnel["type"] == "funnel"
    traffic = figures["traffic"]["data"]  # type: ignore[index]
    assert [t["y"] for t in traffic] == [[0, 1, 2], [0, 1, 2], [0, 3, 6]]
    rates = {t["name"]: t["y"] for t in figures["rates"]["data"]}  # type: ignore[index]
    assert rates == {"bounce": [None, 0.5, 0.5], "engagement": [0.25] * 3, "conversion": [0.0] * 3}
    assert figures["revenue"]["data"][0]["y"] == [9.99] * 3  # type: ignore[index]


def test_kpis_and_window_head_the_page() -> None:
    page = render_html(make_summary(["/"], {c: [] for c in SPLITS}), generated_at=T0, bundle="")
    for text in (
        "12",
        "1,234.50",
        "25.0%",
        "50.0%",
        "2.50",
        "Sessions started 2026-11-30 08:00 – 2026-11-30 10:05 UTC",
    ):
        assert text in page
    assert page.index("Sessions started") < page.index('id="figures"')


@given(
    st.recursive(
        st.text() | st.integers() | st.none(),
        lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=5), x, max_size=3),
        max_leaves=10,
    )
)
def test_script_json_round_trips_and_cannot_end_a_script(value: object) -> None:
    text = script_json(value)
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == value
