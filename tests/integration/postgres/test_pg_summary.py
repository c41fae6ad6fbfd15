"""`pipeline summary`'s numbers from a small dataset, against plain-Python expectations."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from decimal import Decimal

import pytest

from pipeline.analytics.summary import summary, window
from pipeline.config.settings import Settings
from pipeline.contract.event import Event
from pipeline.sinks.postgres.store import PostgresStore
from tests.integration.postgres.session_events import T0, at, envelopes, make_event
from tests.support.truth import expected_sessions

UNTIL = T0 + dt.timedelta(hours=2, minutes=30)  # 11:30 UTC
HOURS = 4  # buckets 08:00, 09:00, 10:00, 11:00

DATASET: list[Event] = [
    # before the window: a day-old session, and one that starts at 07:59 and runs into 08:00
    make_event("s-old", "page_view", at(-30 * 3600), path="/old", user_id="u-old"),
    make_event("s-early", "page_view", at(-3660), path="/early", user_id="u-e"),
    make_event("s-early", "page_view", at(-3590), path="/p/1", user_id="u-e"),
    # 09:00: three sessions, two users
    make_event("s-a", "page_view", at(10), path="/", user_id="u-a"),
    make_event("s-a", "page_view", at(50), path="/p/1", user_id="u-a"),
    make_event("s-a", "add_to_cart", at(65), path="/p/1", user_id="u-a", price="25.00"),
    make_event("s-a", "purchase", at(90), path="/checkout", user_id="u-a", price="25.00", revenue="50.00"),
    make_event("s-b", "page_view", at(20), path="/p/1", user_id="u-b"),
    make_event("s-c", "page_view", at(100), path="/", user_id="u-a"),
    make_event("s-c", "add_to_cart", at(110), path="/p/3", user_id="u-a", price="3.00"),
    make_event("s-c", "page_view", at(130), path="/p/3", user_id="u-a"),
    # 10:00: a purchase without a cart (not in the nested funnel's last step), a search-only session
    make_event("s-d", "page_view", at(4500), path="/p/2", user_id="u-c"),
    make_event("s-d", "purchase", at(4520), path="/checkout", user_id="u-c", price="20.00", revenue="20.50"),
    make_event("s-e", "search", at(4600), path="/", user_id="u-d"),
    make_event("s-e", "click", at(4620.5), path="/", user_id="u-d"),
    # 11:00: a bounce
    make_event("s-f", "page_view", at(7205), path="/p/2", user_id="u-e"),
]


@pytest.fixture
def loaded(store: PostgresStore, migrated_db: Settings) -> Settings:
    store.write(envelopes(DATASET))
    return migrated_db


def test_window_is_whole_utc_hours_up_to_now() -> None:
    assert window(4, UNTIL) == (T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))
    assert window(1, T0) == (T0, T0)
    with pytest.raises(ValueError):
        window(0, UNTIL)


def test_summary_numbers(loaded: Settings) -> None:
    result = summary(loaded, hours=HOURS, until=UNTIL)
    since = T0 - dt.timedelta(hours=1)
    inside = [s for s in expected_sessions(DATASET).values() if since <= s["started_at"] < UNTIL]
    assert sorted(s["session_id"] for s in inside) == ["s-a", "s-b", "s-c", "s-d", "s-e", "s-f"]

    k = result.kpis
    n = len(inside)
    durations = [s["duration_s"] for s in inside]
    assert (k.sessions, k.users) == (n, len({s["user_id"] for s in inside}))
    assert k.avg_duration_s == pytest.approx(sum(durations) / n, abs=Decimal("1e-12"))
    assert k.median_duration_s == pytest.approx(statistics.median(durations), abs=Decimal("1e-9"))
    assert k.bounce_rate == pytest.approx(Decimal(sum(s["is_bounce"] for s in inside)) / n, abs=Decimal("1e-15"))
    assert k.engagement_rate == pytest.approx(Decimal(sum(s["is_engaged"] for s in inside)) / n, abs=Decimal("1e-15"))
    assert k.conversion_rate == pytest.approx(Decimal(sum(s["converted"] for s in inside)) / n, abs=Decimal("1e-15"))
    assert k.revenue == sum(s["revenue"] for s in inside) == Decimal("70.50")
    assert k.pages_per_session == pytest.approx(Decimal(sum(s["page_views"] for s in inside)) / n, abs=Decimal("1e-15"))

    def top(column: str) -> list[tuple[str, int]]:
        counts = Counter(s[column] for s in inside if s[column] is not None)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]

    assert [(p.page_path, p.sessions) for p in result.top_landing_pages] == top("landing_page")
    assert [(p.page_path, p.sessions) for p in result.top_exit_pages] == top("exit_page")
    assert result.top_landing_pages[0].page_path == "/" and result.top_landing_pages[0].sessions == 2

    with_pv = [s for s in inside if s["page_views"] > 0]
    with_cart = [s for s in with_pv if s["add_to_carts"] > 0]
    with_purchase = [s for s in with_cart if s["purchases"] > 0]
    assert (
        (result.funnel.page_view, result.funnel.add_to_cart, result.funnel.purchase)
        == (len(with_pv), len(with_cart), len(with_purchase))
        == (5, 2, 1)
    )

    hourly = {h.bucket.hour: h for h in result.hourly}
    assert sorted(hourly) == [8, 9, 10, 11]
    assert sum(h.sessions_started for h in result.hourly) == k.sessions
    # 08:00: no session started there, but s-early's second page view occurred in it
    assert (hourly[8].sessions_started, hourly[8].active_users, hourly[8].page_views) == (0, 1, 1)
    assert hourly[8].bounce_rate is None and hourly[8].revenue == 0
    assert (hourly[9].sessions_started, hourly[9].active_users, hourly[9].page_views, hourly[9].revenue) == (
        3,
        2,
        5,
        Decimal("50.00"),
    )
    assert (hourly[10].sessions_started, hourly[10].revenue, hourly[10].conversion_rate) == (
        2,
        Decimal("20.50"),
        Decimal("0.5"),
    )
    assert (hourly[11].sessions_started, hourly[11].bounce_rate) == (1, 1)


def test_summary_is_json_serialisable_and_lists_empty_hours(loaded: Settings) -> None:
    result = summary(loaded, hours=6, until=UNTIL + dt.timedelta(hours=2))  # up to 13:30: 12:00 and 13:00 are empty
    data = json.loads(json.dumps(result.to_dict()))
    assert data["hours"] == 6 and data["since"] == "2026-11-30T08:00:00Z"
    assert [h["bucket"] for h in data["hourly"]][-2:] == ["2026-11-30T12:00:00Z", "2026-11-30T13:00:00Z"]
    assert data["hourly"][-1] == {
        "bucket": "2026-11-30T13:00:00Z",
        "sessions_started": 0,
        "active_users": 0,
        "page_views": 0,
        "bounce_rate": None,
        "engagement_rate": None,
        "conversion_rate": None,
        "revenue": 0.0,
    }
    assert data["kpis"]["revenue"] == 70.5 and data["funnel"] == {"page_view": 5, "add_to_cart": 2, "purchase": 1}


def test_summary_of_an_empty_window(migrated_db: Settings) -> None:
    result = summary(migrated_db, hours=2)  # the database's now; nothing stored
    assert result.kpis.sessions == 0 and result.kpis.bounce_rate is None and result.kpis.revenue == 0
    assert result.top_landing_pages == [] and len(result.hourly) == 2
    assert result.until - result.since < dt.timedelta(hours=2)


SPLIT_DATASET: list[Event] = [
    make_event(f"s-{n}", "page_view", at(60 * n), user_id=f"u-{n % 5}", device=device, country=country)
    for n, (device, country) in enumerate(
        [
            (("mobile", "Safari", "iOS"), "FR"),
            (("desktop", "Chrome", "Windows"), "DE"),
            (("mobile", "Chrome", "Android"), "FR"),
            (("tablet", "Safari", "iPadOS"), "US"),
            (("desktop", "Firefox", "Linux"), "DE"),
            (("mobile", "Safari", "iOS"), "FR"),
            (("desktop", "Chrome", "macOS"), "<script>"),
        ]
    )
] + [make_event("s-before", "page_view", at(-7200), device=("tablet", "Edge", "Windows"), country="JP")]


def test_summary_splits_sessions_by_device_browser_and_country(store: PostgresStore, migrated_db: Settings) -> None:
    store.write(envelopes(SPLIT_DATASET))
    result = summary(migrated_db, hours=1, until=T0 + dt.timedelta(minutes=30))
    inside = [s for s in expected_sessions(SPLIT_DATASET).values() if T0 <= s["started_at"]]
    assert len(inside) == 7
    for column in ("device_type", "browser", "country"):
        counts = sorted(Counter(s[column] for s in inside).items(), key=lambda kv: (-kv[1], kv[0]))
        assert [(share.value, share.sessions) for share in result.splits[column]] == counts
    assert result.to_dict()["splits"]["country"][0] == {"value": "FR", "sessions": 3}
