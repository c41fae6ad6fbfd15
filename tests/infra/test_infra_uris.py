"""The URI helpers are pure: test them with awkward credentials and wire-format ports."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from infra.uris import first, host_port, https_uri, port_number, postgres_uri, with_database

NASTY_PASSWORD = "p@ss:w/rd?#%+ &="


@pytest.mark.parametrize(("raw", "expected"), [(12693, 12693), (12693.0, 12693), ("443", 443)])
def test_port_number_accepts_wire_shapes(raw: int | float | str, expected: int) -> None:
    assert port_number(raw) == expected


@pytest.mark.parametrize("raw", [12693.5, "12a", True, 0, 70000, "-1"])
def test_port_number_rejects_non_ports(raw: object) -> None:
    with pytest.raises(ValueError):
        port_number(raw)  # type: ignore[arg-type]


def test_host_port() -> None:
    assert host_port("kafka.example.com", 12693.0) == "kafka.example.com:12693"
    with pytest.raises(ValueError):
        host_port("", 1)


def test_postgres_uri_round_trips_credentials() -> None:
    uri = postgres_uri("app user", NASTY_PASSWORD, "pg.example.com", 12691.0, "clickstream")
    parts = urlsplit(uri)
    assert parts.scheme == "postgres"
    assert unquote(parts.username or "") == "app user"
    assert unquote(parts.password or "") == NASTY_PASSWORD
    assert (parts.hostname, parts.port, parts.path) == ("pg.example.com", 12691, "/clickstream")
    assert parse_qs(parts.query) == {"sslmode": ["verify-full"]}


def test_with_database_moves_admin_uri_to_the_app_database() -> None:
    admin = "postgres://avnadmin:AVNS%2Fx%40y@pg.example.com:12691/defaultdb?sslmode=require&connect_timeout=5"
    uri = with_database(admin, "clickstream")
    parts = urlsplit(uri)
    assert parts.netloc == "avnadmin:AVNS%2Fx%40y@pg.example.com:12691"  # credentials untouched
    assert parts.path == "/clickstream"
    assert parse_qs(parts.query) == {"sslmode": ["verify-full"], "connect_timeout": ["5"]}


def test_with_database_rejects_other_schemes_without_echoing_the_uri() -> None:
    with pytest.raises(ValueError) as error:
        with_database("https://admin:secret@host:443", "clickstream")
    assert "secret" not in str(error.value)


def test_https_uri_round_trips_credentials() -> None:
    parts = urlsplit(https_uri("clickstream-pipeline", NASTY_PASSWORD, "os.example.com", 12692))
    assert parts.scheme == "https"
    assert unquote(parts.username or "") == "clickstream-pipeline"
    assert unquote(parts.password or "") == NASTY_PASSWORD
    assert (parts.hostname, parts.port) == ("os.example.com", 12692)


def test_first_explains_an_empty_block() -> None:
    assert first(["a", "b"], "kafka") == "a"
    with pytest.raises(ValueError, match="no kafka block"):
        first([], "kafka")
