"""The 30-minute sessionization rule, in isolation."""

from __future__ import annotations

import itertools

import pytest

from pipeline.simulation.tracker import (
    DIRECT,
    SESSION_TIMEOUT,
    SESSION_TIMEOUT_MS,
    Attribution,
    SessionTracker,
    starts_new_session,
)

EMAIL = Attribution("email", None, "newsletter", "email", "weekly_digest")
SOCIAL = Attribution("social", "https://t.co/", "twitter", "social", None)


def tracker() -> SessionTracker:
    counter = itertools.count(1)
    return SessionTracker(lambda: f"s-{next(counter)}")


def test_timeout_is_thirty_minutes() -> None:
    assert SESSION_TIMEOUT.total_seconds() == 1800
    assert SESSION_TIMEOUT_MS == 1_800_000


def test_boundary_exactly_thirty_minutes_continues_one_more_millisecond_splits() -> None:
    assert starts_new_session(None, 0)
    assert not starts_new_session(0, SESSION_TIMEOUT_MS)
    assert starts_new_session(0, SESSION_TIMEOUT_MS + 1)
    t = tracker()
    first, _ = t.assign("u", 0, None)
    same, _ = t.assign("u", SESSION_TIMEOUT_MS, None)
    assert same == first
    later, _ = t.assign("u", 2 * SESSION_TIMEOUT_MS + 1, None)
    assert later != first


def test_gap_is_measured_from_the_latest_event_not_the_session_start() -> None:
    t = tracker()
    ids = {t.assign("u", minute * 60_000, None)[0] for minute in range(0, 300, 20)}
    assert len(ids) == 1  # five hours of activity, never 30 minutes idle


def test_users_are_independent() -> None:
    t = tracker()
    a, _ = t.assign("a", 0, None)
    b, _ = t.assign("b", 0, None)
    assert a != b
    assert t.assign("a", 60_000, None)[0] == a


def test_attribution_is_fixed_at_session_start() -> None:
    t = tracker()
    sid, attr = t.assign("u", 0, EMAIL)
    assert attr == EMAIL
    # A new visit with other attribution inside the session keeps the session's.
    assert t.assign("u", 10 * 60_000, SOCIAL) == (sid, EMAIL)
    # A session reopened by an event that is not a landing is direct.
    sid2, attr2 = t.assign("u", 10 * 60_000 + SESSION_TIMEOUT_MS + 1, None)
    assert sid2 != sid and attr2 == DIRECT
    # A landing after the timeout brings its own attribution.
    assert t.assign("u", 3 * SESSION_TIMEOUT_MS * 2, SOCIAL)[1] == SOCIAL


def test_out_of_order_events_are_refused() -> None:
    t = tracker()
    t.assign("u", 10_000, None)
    with pytest.raises(ValueError):
        t.assign("u", 9_999, None)


def test_prune_forgets_only_idle_users() -> None:
    t = tracker()
    t.assign("idle", 0, None)
    t.assign("busy", SESSION_TIMEOUT_MS, None)
    t.prune(SESSION_TIMEOUT_MS + 1)
    assert t.last_seen_ms("idle") is None
    assert t.last_seen_ms("busy") == SESSION_TIMEOUT_MS
    assert len(t) == 1
