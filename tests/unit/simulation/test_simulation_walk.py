"""The visit walk: who visits, how they arrive and what they do, as a day of traffic shows it."""

from __future__ import annotations

import collections
import datetime as dt
import random
from decimal import Decimal
from itertools import islice

import pytest

from pipeline.events import Event
from pipeline.simulation import SimulationConfig, backfill
from pipeline.simulation.calibration import visit_stats
from pipeline.simulation.walk import HOME, PRODUCT, Walker, shop
from pipeline.simulation.wire import NO_TAIL, PAGE_VIEW_SEG

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TWO_HOURS = dt.timedelta(hours=2)


# --- one visit ------------------------------------------------------------------------------
def test_a_new_visit_plans_exactly_its_landing_page_view() -> None:
    walker = Walker(SimulationConfig(seed=1), random.Random(1), 1.0, 50)
    site, segments = shop(SimulationConfig().host)
    for _ in range(200):
        visit = walker.start(set())
        assert visit is not None
        assert visit.plan == ((0, PAGE_VIEW_SEG, segments.page[visit.url], NO_TAIL),)
        assert visit.left == 1 and visit.emitted == 0 and visit.session is None
        if visit.page == PRODUCT:
            assert visit.product is not None and visit.category is not None
            assert visit.product in visit.category.products and visit.url == visit.product.url
        elif visit.page == HOME:
            assert visit.url == site.home_url


def test_a_busy_user_is_redrawn_and_then_the_arrival_dropped() -> None:
    lone = Walker(SimulationConfig(seed=1), random.Random(1), 1.0, 1)
    assert lone.start({0}) is None  # the only user is browsing already
    walker = Walker(SimulationConfig(seed=1), random.Random(2), 1.0, 2)
    started = [walker.start({0}) for _ in range(50)]
    users = {v.user for v in started if v is not None}
    assert users == {1}  # never the busy one
    assert any(v is None for v in started)  # ... and sometimes four draws of user 0 in a row


def test_calibration_depends_on_the_visit_shape_only() -> None:
    base = visit_stats(SimulationConfig())
    assert visit_stats(SimulationConfig(seed=9, rate=5_000.0, users=7, diurnal=False)) is base
    bouncy = visit_stats(SimulationConfig(bounce_rate=0.9))
    assert bouncy.mean_events < base.mean_events
    assert 1.0 < base.mean_events < 20.0 and 0 < base.mean_duration_s <= base.p95_duration_s


def test_every_product_belongs_to_the_category_it_names() -> None:
    site, _ = shop(SimulationConfig().host)
    assert set(site.categories_by_slug) == {c.slug for c in site.categories}
    for product in site.products.values():
        assert product in site.categories_by_slug[product.category].products


# --- distributions over a day ------------------------------------------------------------
def _user_share(events: list[Event], attr: str) -> dict[str, float]:
    first: dict[str, Event] = {}
    for e in events:
        first.setdefault(e.user_id, e)
    counts = collections.Counter(getattr(e, attr) for e in first.values())
    return {k: v / len(first) for k, v in counts.items()}


def test_device_mix_follows_the_config(day_events: list[Event]) -> None:
    share = _user_share(day_events, "device_type")
    assert share["mobile"] == pytest.approx(0.60, abs=0.03)
    assert share["desktop"] == pytest.approx(0.35, abs=0.03)
    assert share["tablet"] == pytest.approx(0.05, abs=0.015)


def test_custom_device_weights_are_honoured() -> None:
    cfg = SimulationConfig(seed=5, rate=5, device_weights=(("desktop", 0.9), ("mobile", 0.1)))
    events = [m.event for m in islice(backfill(cfg, END, window=TWO_HOURS), 20_000)]
    share = _user_share([e for e in events if e], "device_type")
    assert share["desktop"] == pytest.approx(0.9, abs=0.04)
    assert "tablet" not in share


def test_country_mix_is_skewed(day_events: list[Event]) -> None:
    share = _user_share(day_events, "country")
    top = max(share, key=share.__getitem__)
    assert top == "US" and share["US"] == pytest.approx(0.30, abs=0.04)
    assert len(share) >= 20


def _channel(e: Event) -> str:
    if e.utm_medium in ("cpc", "paid_social"):
        return "paid"
    if e.utm_medium in ("email", "social"):
        return e.utm_medium
    return "organic" if e.referrer else "direct"


def _sessions(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = collections.defaultdict(list)
    for e in events:
        out[e.session_id].append(e)
    return out


def test_traffic_channels_follow_the_config(day_events: list[Event]) -> None:
    sessions = _sessions(day_events)
    counts = collections.Counter(_channel(s[0]) for s in sessions.values())
    share = {k: v / len(sessions) for k, v in counts.items()}
    # direct is a little above its 30%: a session reopened after a long idle pause is direct.
    for channel, weight in SimulationConfig().channel_weights:
        assert share[channel] == pytest.approx(weight, abs=0.05), channel


def test_bounce_rate_follows_the_config(day_events: list[Event]) -> None:
    sessions = _sessions(day_events)
    single = sum(1 for s in sessions.values() if len(s) == 1) / len(sessions)
    assert single == pytest.approx(0.40, abs=0.06)
    high = [m.event for m in islice(backfill(SimulationConfig(seed=5, rate=5, bounce_rate=0.8), END), 20_000)]
    high_sessions = _sessions([e for e in high if e])
    assert sum(1 for s in high_sessions.values() if len(s) == 1) / len(high_sessions) > single + 0.25


def test_dwell_times_are_human(day_events: list[Event]) -> None:
    gaps = []
    for s in _sessions(day_events).values():
        gaps += [(b.occurred_at - a.occurred_at).total_seconds() for a, b in zip(s, s[1:], strict=False)]
    gaps.sort()
    median = gaps[len(gaps) // 2]
    assert 1 <= median <= 60
    assert gaps[int(0.9 * len(gaps))] > 20  # some pages are read for a while


def test_purchases_total_the_cart(day_events: list[Event]) -> None:
    """revenue is the sum of the last cart's add-to-cart prices; product/price is its top line."""
    adds: dict[str, list[Event]] = collections.defaultdict(list)
    first_seen: dict[str, dt.datetime] = {}
    # Visits in flight when the window opens began in the (unemitted) warm-up, so their
    # carts are partly unseen: judge only users who first appear well inside the window.
    settled = day_events[0].occurred_at + dt.timedelta(hours=3)
    purchases = 0
    for e in day_events:
        first_seen.setdefault(e.user_id, e.occurred_at)
        if e.event_type == "add_to_cart":
            adds[e.user_id].append(e)
        elif e.event_type == "purchase" and first_seen[e.user_id] > settled:
            assert e.revenue is not None and e.price is not None and e.order_id
            prior = adds.pop(e.user_id, [])
            suffix_sums = {}
            total = Decimal(0)
            for k, a in enumerate(reversed(prior), 1):
                total += a.price  # type: ignore[operator]
                suffix_sums[total] = prior[-k:]
            assert e.revenue in suffix_sums, e
            cart = suffix_sums[e.revenue]
            assert e.price == max(a.price for a in cart)  # type: ignore[type-var]
            assert e.product_id in {a.product_id for a in cart}
            purchases += 1
    assert purchases > 300


def test_conversion_is_plausible(day_events: list[Event]) -> None:
    sessions = _sessions(day_events)
    converted = sum(1 for s in sessions.values() if any(e.event_type == "purchase" for e in s))
    assert 0.005 < converted / len(sessions) < 0.08
