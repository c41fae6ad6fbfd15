"""The migration SQL as text, for both flavours (no server needed).

Only plain PostgreSQL is available on this machine, so the TimescaleDB branch is checked
here by what it renders: hypertable, primary key, time_bucket, and compression only under
the licence that allows it.
"""

from __future__ import annotations

import re

import pytest

from pipeline.sinks.postgres.migrate import (
    Flavour,
    Migration,
    MigrationError,
    check_history,
    load_migrations,
    placeholders,
    render,
    timescaledb_events_sql,
)

PLAIN = Flavour(timescaledb=False)
TIMESCALE_APACHE = Flavour(timescaledb=True, license="apache")
TIMESCALE_COMMUNITY = Flavour(timescaledb=True, license="timescale")


def rendered(flavour: Flavour, label: str, *, app_role: str = "clickstream_app") -> str:
    values = placeholders(flavour, app_role=app_role, database="clickstream")
    (migration,) = [m for m in load_migrations() if m.label == label]
    return render(migration.text, values)


def test_migrations_are_numbered_without_gaps() -> None:
    assert [m.version for m in load_migrations()] == list(range(1, len(load_migrations()) + 1))


@pytest.mark.parametrize("flavour", [PLAIN, TIMESCALE_APACHE, TIMESCALE_COMMUNITY])
def test_every_placeholder_is_filled(flavour: Flavour) -> None:
    values = placeholders(flavour, app_role="clickstream_app", database="clickstream")
    for migration in load_migrations():
        assert "{{" not in render(migration.text, values), migration.label


def test_plain_postgresql_uses_date_bin_and_no_timescaledb() -> None:
    events = rendered(PLAIN, "0001_events")
    views = rendered(PLAIN, "0003_views")
    assert "PRIMARY KEY (event_id)" in events
    assert "create_hypertable" not in events and "timescaledb" not in events.split("-- ")[0]
    assert "date_bin(bucket_width, s.started_at" in views
    assert "date_bin(bucket_width, e.occurred_at" in views
    assert "time_bucket(" not in views


def test_timescaledb_makes_events_a_hypertable_keyed_with_occurred_at() -> None:
    events = rendered(TIMESCALE_APACHE, "0001_events")
    assert "PRIMARY KEY (event_id, occurred_at)" in events
    # The by_range() dimension form; the positional (table, column, ...) form is deprecated.
    assert re.search(r"SELECT create_hypertable\('events', by_range\('occurred_at', INTERVAL '1 day'\),", events)
    assert "chunk_time_interval" not in events
    assert "migrate_data => true" in events and "create_default_indexes => false" in events
    views = rendered(TIMESCALE_APACHE, "0003_views")
    assert "time_bucket(bucket_width, s.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')" in views
    assert "date_bin(" not in views


def test_compression_only_under_the_community_licence() -> None:
    apache = timescaledb_events_sql("apache")
    community = timescaledb_events_sql("timescale")
    assert "timescaledb.compress" not in apache and "add_compression_policy" not in apache
    assert "timescaledb.compress_segmentby = 'session_id'" in community
    assert "SELECT add_compression_policy('events', INTERVAL '7 days');" in community
    assert TIMESCALE_COMMUNITY.compression and not TIMESCALE_APACHE.compression and not PLAIN.compression


def test_the_app_role_is_quoted_as_an_identifier() -> None:
    grants = rendered(PLAIN, "0004_app_role_grants", app_role='odd"role')
    assert 'GRANT SELECT, INSERT ON events TO "odd""role";' in grants


def test_an_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(MigrationError, match="unknown placeholder"):
        render("SELECT {{nope}}", {})


def test_history_checks() -> None:
    one, two = Migration(1, "a", "SELECT 1"), Migration(2, "b", "SELECT 2")
    assert check_history([one, two], {}) == [one, two]
    assert check_history([one, two], {1: ("a", one.checksum)}) == [two]
    with pytest.raises(MigrationError, match="0001_a was changed"):
        check_history([one, two], {1: ("a", "other")})
    with pytest.raises(MigrationError, match="0001_a are older"):
        check_history([one, two], {2: ("b", two.checksum)})
    assert check_history([one], {1: ("a", one.checksum), 2: ("b", "newer code")}) == []
