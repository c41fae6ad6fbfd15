"""The expected contents of the sinks, computed the plain way from what was sent.

The one oracle of the tests: every test that checks a session row, a session document or
a time bucket compares it with what this module computes. Deliberately independent of
the production code: no import from ``pipeline`` (a test holds it so), no SQL, nothing
read from the table of session columns; only ``json``, ``decimal``, ``urllib`` and loops a
reader can check by eye against the meaning of each column in the README. One line per
metric in :func:`_session`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit


def parse_event(value: str) -> dict[str, Any]:
    """A valid event message as plain Python values (Decimal money, aware datetimes)."""
    ev = json.loads(value, parse_float=Decimal, parse_int=Decimal)
    ev["occurred_at"] = dt.datetime.strptime(ev["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    ev["schema_version"] = int(ev["schema_version"])
    return ev


def unique_events(values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """One event per event_id: a duplicate message is the same event sent again."""
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        ev = parse_event(value)
        out.setdefault(ev["event_id"], ev)
    return out


def path_of(url: str) -> str:
    """The URL's path; '/' when it has none."""
    return urlsplit(url).path or "/"


def expected_sessions(events: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """session_id -> the expected metrics of its session (all but ``version``, ``updated_at``).

    ``events`` are parsed messages (:func:`parse_event`) or the tests' ``Event`` structs;
    of several copies of one ``event_id`` the first counts, as in the sinks.
    """
    unique: dict[str, Mapping[str, Any]] = {}
    for event in events:
        fields = _as_mapping(event)
        unique.setdefault(fields["event_id"], fields)
    by_session: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for ev in unique.values():
        by_session[ev["session_id"]].append(ev)
    return {sid: _session(evs) for sid, evs in by_session.items()}


def _as_mapping(event: Any) -> Mapping[str, Any]:
    """A parsed message already is a mapping; a msgspec Struct is read field by field (its class is not imported)."""
    if isinstance(event, Mapping):
        return event
    return {name: getattr(event, name) for name in event.__struct_fields__}


def _session(evs: list[Mapping[str, Any]]) -> dict[str, Any]:
    evs = sorted(evs, key=lambda e: (e["occurred_at"], e["event_id"]))
    first, last = evs[0], evs[-1]
    page_views = [e for e in evs if e["event_type"] == "page_view"]
    purchases = [e for e in evs if e["event_type"] == "purchase"]
    duration = Decimal((last["occurred_at"] - first["occurred_at"]) // dt.timedelta(milliseconds=1)) / 1000
    converted = len(purchases) > 0
    engaged = duration >= 10 or len(page_views) >= 2 or converted
    return {
        "session_id": first["session_id"],
        "user_id": first["user_id"],
        "started_at": first["occurred_at"],
        "ended_at": last["occurred_at"],
        "duration_s": duration,
        "events": len(evs),
        "page_views": len(page_views),
        "unique_pages": len({path_of(e["page_url"]) for e in page_views}),
        "clicks": sum(1 for e in evs if e["event_type"] == "click"),
        "searches": sum(1 for e in evs if e["event_type"] == "search"),
        "add_to_carts": sum(1 for e in evs if e["event_type"] == "add_to_cart"),
        "purchases": len(purchases),
        "revenue": sum((e["revenue"] for e in purchases), Decimal(0)),
        "landing_page": path_of(page_views[0]["page_url"]) if page_views else None,
        "exit_page": path_of(page_views[-1]["page_url"]) if page_views else None,
        "referrer": first["referrer"],
        "utm_source": first["utm_source"],
        "utm_medium": first["utm_medium"],
        "utm_campaign": first["utm_campaign"],
        "device_type": first["device_type"],
        "browser": first["browser"],
        "os": first["os"],
        "country": first["country"],
        "converted": converted,
        "is_engaged": engaged,
        "is_bounce": not engaged,
    }


def expected_buckets(
    events: Iterable[dict[str, Any]], sessions: Iterable[dict[str, Any]], width: dt.timedelta
) -> dict[dt.datetime, dict[str, Any]]:
    """Per time bucket: sessions started, active users, page views, rates, revenue."""

    def bucket(ts: dt.datetime) -> dt.datetime:
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return epoch + ((ts - epoch) // width) * width

    out: dict[dt.datetime, dict[str, Any]] = defaultdict(
        lambda: {
            "sessions_started": 0,
            "users": set(),
            "page_views": 0,
            "revenue": Decimal(0),
            "bounces": 0,
            "engaged": 0,
            "converted": 0,
        }
    )
    for ev in events:
        b = out[bucket(ev["occurred_at"])]
        b["users"].add(ev["user_id"])
        if ev["event_type"] == "page_view":
            b["page_views"] += 1
        if ev["event_type"] == "purchase":
            b["revenue"] += ev["revenue"]
    for s in sessions:
        b = out[bucket(s["started_at"])]
        b["sessions_started"] += 1
        b["bounces"] += s["is_bounce"]
        b["engaged"] += s["is_engaged"]
        b["converted"] += s["converted"]
    result: dict[dt.datetime, dict[str, Any]] = {}
    for key, b in out.items():
        n = b["sessions_started"]
        result[key] = {
            "sessions_started": n,
            "active_users": len(b["users"]),
            "page_views": b["page_views"],
            "revenue": b["revenue"],
            "bounce_rate": Decimal(b["bounces"]) / n if n else None,
            "engagement_rate": Decimal(b["engaged"]) / n if n else None,
            "conversion_rate": Decimal(b["converted"]) / n if n else None,
        }
    return result
