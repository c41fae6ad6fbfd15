"""The numbers behind ``pipeline summary`` and ``pipeline report``: KPIs, top pages, the funnel,
the split by device, browser and country, and the last hours.

Read-only, with the application role, in one REPEATABLE READ transaction so every part of
the summary describes the same snapshot (a consumer committing mid-way cannot make the
KPIs disagree with the hourly table).

The window: the last ``hours`` UTC hour buckets, the current (partial) one included,
i.e. from the start of the hour ``hours - 1`` hours before ``until`` up to ``until``
(now). Every part counts the sessions that STARTED in the window, so the KPI ``sessions``
equals the sum of the hourly ``sessions_started``. The hourly rows come from the
``stats_per_hour`` view (where page views, active users and revenue count the events that
OCCURRED in each hour); hours without traffic are listed with zeros.

The metric definitions themselves live in ``pipeline/sessions/columns.py`` (per session)
and ``pipeline/sinks/postgres/migrations/0003_views.sql`` (per bucket); this module only
aggregates those columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg.rows import class_row

from pipeline.config.settings import Settings
from pipeline.errors import ServiceError, first_line

TOP_PAGES: Final = 10
SPLITS: Final = ("device_type", "browser", "country")
"""Session columns the summary breaks sessions down by (each a column of ``sessions``)."""
TOP_SPLIT_VALUES: Final = 20
_HOUR: Final = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Kpis:
    """Over the sessions started in the window; rates are fractions 0..1, None without sessions."""

    sessions: int
    users: int
    avg_duration_s: Decimal | None
    median_duration_s: Decimal | None
    bounce_rate: Decimal | None
    engagement_rate: Decimal | None
    conversion_rate: Decimal | None
    revenue: Decimal
    pages_per_session: Decimal | None


@dataclass(frozen=True)
class PageCount:
    page_path: str
    sessions: int


@dataclass(frozen=True)
class Share:
    """Sessions (started in the window) with one value of a split column."""

    value: str
    sessions: int


@dataclass(frozen=True)
class Funnel:
    """Nested steps: each counts the sessions that also reached every earlier step."""

    page_view: int
    add_to_cart: int
    purchase: int


@dataclass(frozen=True)
class HourStats:
    """One row of ``stats_per_hour`` (zeros and None for an hour without traffic)."""

    bucket: dt.datetime
    sessions_started: int
    active_users: int
    page_views: int
    bounce_rate: Decimal | None
    engagement_rate: Decimal | None
    conversion_rate: Decimal | None
    revenue: Decimal


@dataclass(frozen=True)
class Summary:
    hours: int
    since: dt.datetime
    until: dt.datetime
    kpis: Kpis
    funnel: Funnel
    top_landing_pages: list[PageCount] = field(default_factory=list)
    top_exit_pages: list[PageCount] = field(default_factory=list)
    hourly: list[HourStats] = field(default_factory=list)
    splits: dict[str, list[Share]] = field(default_factory=dict)
    """Column of ``SPLITS`` -> its most frequent values, most sessions first."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: numbers as int/float, times as ISO 8601 strings (UTC)."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


_KPIS: Final = """
SELECT count(*)                                                   AS sessions,
       count(DISTINCT user_id)                                    AS users,
       avg(duration_s)                                            AS avg_duration_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s)::numeric AS median_duration_s,
       avg(is_bounce::int)                                        AS bounce_rate,
       avg(is_engaged::int)                                       AS engagement_rate,
       avg(converted::int)                                        AS conversion_rate,
       coalesce(sum(revenue), 0)                                  AS revenue,
       avg(page_views)                                            AS pages_per_session
FROM sessions
WHERE started_at >= %(since)s AND started_at < %(until)s
"""

_FUNNEL: Final = """
SELECT count(*) FILTER (WHERE page_views > 0)                                       AS page_view,
       count(*) FILTER (WHERE page_views > 0 AND add_to_carts > 0)                  AS add_to_cart,
       count(*) FILTER (WHERE page_views > 0 AND add_to_carts > 0 AND purchases > 0) AS purchase
FROM sessions
WHERE started_at >= %(since)s AND started_at < %(until)s
"""

# {column} is landing_page, exit_page or one of SPLITS (chosen in code, never from input).
_TOP_VALUES: Final = """
SELECT {column} AS value, count(*) AS sessions
FROM sessions
WHERE started_at >= %(since)s AND started_at < %(until)s AND {column} IS NOT NULL
GROUP BY {column}
ORDER BY sessions DESC, value
LIMIT %(limit)s
"""

_HOURLY: Final = """
SELECT b.bucket,
       coalesce(h.sessions_started, 0) AS sessions_started,
       coalesce(h.active_users, 0)     AS active_users,
       coalesce(h.page_views, 0)       AS page_views,
       h.bounce_rate,
       h.engagement_rate,
       h.conversion_rate,
       coalesce(h.revenue, 0)          AS revenue
FROM generate_series(%(since)s::timestamptz, %(last_bucket)s::timestamptz, INTERVAL '1 hour') AS b (bucket)
LEFT JOIN (
    SELECT * FROM stats_per_hour WHERE bucket >= %(since)s AND bucket <= %(last_bucket)s
) AS h ON h.bucket = b.bucket
ORDER BY b.bucket
"""


def window(hours: int, until: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(since, last bucket): the start of the first and of the last of ``hours`` UTC hour buckets."""
    if hours < 1:
        raise ValueError("hours must be at least 1")
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    last_bucket = until.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return last_bucket - (hours - 1) * _HOUR, last_bucket


def summary(settings: Settings, hours: int = 24, *, until: dt.datetime | None = None) -> Summary:
    """Read the summary of the last ``hours`` hours up to ``until`` (default: the database's now)."""
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=15) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                conn.execute("SET LOCAL TIME ZONE 'UTC'")
                if until is None:
                    row = conn.execute("SELECT now()").fetchone()
                    assert row is not None
                    until = row[0]
                since, last_bucket = window(hours, until)
                params = {"since": since, "until": until, "last_bucket": last_bucket}
                with conn.cursor(row_factory=class_row(Kpis)) as cur:
                    kpis = cur.execute(_KPIS, params).fetchone()
                with conn.cursor(row_factory=class_row(Funnel)) as cur:
                    funnel = cur.execute(_FUNNEL, params).fetchone()
                landing = [PageCount(*row) for row in _top(conn, "landing_page", params, TOP_PAGES)]
                exits = [PageCount(*row) for row in _top(conn, "exit_page", params, TOP_PAGES)]
                splits = {c: [Share(*row) for row in _top(conn, c, params, TOP_SPLIT_VALUES)] for c in SPLITS}
                with conn.cursor(row_factory=class_row(HourStats)) as cur:
                    hourly = cur.execute(_HOURLY, params).fetchall()
    except psycopg.OperationalError as exc:
        raise ServiceError(f"PostgreSQL unavailable: {first_line(exc)}") from None
    except psycopg.errors.UndefinedTable as exc:
        raise ServiceError(f"PostgreSQL schema missing ({first_line(exc)}); run `pipeline schema`") from None
    except psycopg.Error as exc:
        raise ServiceError(f"reading the summary failed: {first_line(exc)}") from None
    assert kpis is not None and funnel is not None and until is not None
    return Summary(
        hours=hours,
        since=since,
        until=until,
        kpis=kpis,
        funnel=funnel,
        top_landing_pages=landing,
        top_exit_pages=exits,
        hourly=hourly,
        splits=splits,
    )


def _top(conn: psycopg.Connection[Any], column: str, params: dict[str, Any], limit: int) -> list[tuple[str, int]]:
    query = _TOP_VALUES.format(column=column)
    return conn.execute(query, {**params, "limit": limit}).fetchall()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value
