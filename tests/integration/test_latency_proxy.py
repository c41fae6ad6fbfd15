"""The latency benchmark's delay proxy in front of the real services: it adds the delay, and Kafka stays behind it.

Only lower bounds on time are asserted (a round trip through the proxy cannot take less
than twice the one-way delay); how much longer it takes depends on the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from benchmarks.latency.proxy import ProxyThread
from benchmarks.latency.routes import KAFKA, POSTGRES, proxied_outputs, routes
from devstack.layout import load_layout
from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import opensearch_client

pytestmark = pytest.mark.integration

ONE_WAY_S = 0.030
ROUND_TRIPS = 5


@pytest.fixture
def proxied(outputs: dict[str, Any]) -> Iterator[tuple[Settings, ProxyThread]]:
    """The stack's settings with every service behind a proxy adding ONE_WAY_S each way."""
    layout = load_layout()
    found = routes(outputs, kafka_proxied_port=layout.kafka_proxied_port, kafka_proxy_port=layout.kafka_proxy_port)
    with ProxyThread(found, ONE_WAY_S) as proxies:
        yield Settings.from_outputs(proxied_outputs(outputs, proxies.ports), source="proxied"), proxies


def fastest_round_trip(call: Callable[[], object]) -> float:
    """The shortest of ROUND_TRIPS calls, after one call that opens the connection."""
    call()
    times = []
    for _ in range(ROUND_TRIPS):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return min(times)


def test_postgresql_through_the_proxy_takes_at_least_the_added_round_trip(
    proxied: tuple[Settings, ProxyThread],
) -> None:
    settings, proxies = proxied
    with psycopg.connect(settings.postgres.conninfo("app"), autocommit=True) as conn:
        fastest = fastest_round_trip(lambda: conn.execute("SELECT 1").fetchone())
    assert fastest >= 2 * ONE_WAY_S
    assert proxies.proxies[[p.route.name for p in proxies.proxies].index(POSTGRES)].connections >= 1


def test_opensearch_through_the_proxy_takes_at_least_the_added_round_trip(
    proxied: tuple[Settings, ProxyThread],
) -> None:
    settings, _ = proxied
    client = opensearch_client(settings.opensearch, "app")
    try:
        fastest = fastest_round_trip(lambda: client.transport.perform_request("GET", "/_plugins/_security/authinfo"))
    finally:
        client.close()
    assert fastest >= 2 * ONE_WAY_S


def test_kafka_clients_stay_behind_the_proxy_and_each_request_takes_the_added_round_trip(
    proxied: tuple[Settings, ProxyThread],
) -> None:
    settings, proxies = proxied
    kafka_port = proxies.ports[KAFKA]
    admin = AdminClient(settings.kafka.client_config("admin") | {"log_level": 0})
    brokers = admin.list_topics(timeout=30).brokers
    # the broker advertises the proxy's port on the proxied listener: every later connection goes through it
    assert {b.port for b in brokers.values()} == {kafka_port}
    fastest = fastest_round_trip(lambda: admin.list_topics(timeout=30))
    assert fastest >= 2 * ONE_WAY_S


def test_the_stack_s_own_kafka_address_still_advertises_itself(settings: Settings) -> None:
    """The proxied listener is invisible to clients of the ordinary one."""
    admin = AdminClient(settings.kafka.client_config("admin") | {"log_level": 0})
    brokers = admin.list_topics(timeout=30).brokers
    assert {f"{b.host}:{b.port}" for b in brokers.values()} == {settings.kafka.bootstrap}
