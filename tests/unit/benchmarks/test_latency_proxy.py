"""The latency benchmark's pure parts: the proxy's delay line, the routes, the stack outputs it rewrites."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.latency.proxy import DelayLine, Turns
from benchmarks.latency.routes import (
    KAFKA,
    OPENSEARCH,
    POSTGRES,
    RouteError,
    parse_latencies,
    proxied_outputs,
    routes,
    with_port,
)
from benchmarks.latency_drain import round_order
from pipeline.contract.outputs import Output

# --- the delay line -----------------------------------------------------------------------------

arrivals = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.binary(min_size=0, max_size=40)),
    max_size=30,
)


@given(
    delay=st.floats(min_value=0, max_value=2, allow_nan=False),
    gaps_and_chunks=arrivals,
    pops=st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=30),
)
def test_every_byte_comes_out_once_in_order_and_never_before_its_arrival_plus_the_delay(
    delay: float, gaps_and_chunks: list[tuple[float, bytes]], pops: list[float]
) -> None:
    line = DelayLine(delay)
    now = 0.0
    due_of_byte: list[float] = []  # the independent record: when each byte may leave at the earliest
    sent = b""
    out = b""
    released_at: list[float] = []
    pop_times = sorted(pops)
    for gap, chunk in gaps_and_chunks:
        now += gap
        while pop_times and pop_times[0] <= now:
            t = pop_times.pop(0)
            data = line.pop_due(t)
            out += data
            released_at += [t] * len(data)
        line.push(now, chunk)
        sent += chunk
        due_of_byte += [now + delay] * len(chunk)
    end = now + delay
    data = line.pop_due(end)
    out += data
    released_at += [end] * len(data)
    assert out == sent
    assert all(r >= d for r, d in zip(released_at, due_of_byte, strict=True))
    assert line.buffered == 0 and len(line) == 0 and line.next_due() is None


def test_a_chunk_is_held_until_exactly_its_due_time() -> None:
    line = DelayLine(0.025)
    line.push(10.0, b"abc")
    line.push(10.010, b"de")
    assert line.next_due() == pytest.approx(10.025)
    assert line.pop_due(10.024) == b""
    assert line.pop_due(10.025) == b"abc"
    assert line.next_due() == pytest.approx(10.035)
    assert line.pop_due(10.5) == b"de"


def test_the_reader_is_told_to_wait_once_the_buffer_holds_its_limit_and_may_go_on_after_delivery() -> None:
    line = DelayLine(1.0, max_buffered=10)
    line.push(0.0, b"12345")
    assert not line.full
    line.push(0.1, b"67890")
    assert line.full and line.buffered == 10
    assert line.pop_due(1.05) == b"12345"
    assert not line.full and line.buffered == 5


def test_empty_chunks_are_not_held() -> None:
    line = DelayLine(0.5)
    line.push(0.0, b"")
    assert len(line) == 0 and line.next_due() is None


@pytest.mark.parametrize("delay", [-0.001, -1.0])
def test_a_negative_delay_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        DelayLine(delay)


# --- the round-trip times asked for -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0,10,50", [0.0, 10.0, 50.0]), ("50, 10", [0.0, 10.0, 50.0]), ("2.5", [0.0, 2.5]), ("0", [0.0])],
)
def test_latencies_are_sorted_and_always_include_the_0_ms_baseline(text: str, expected: list[float]) -> None:
    assert parse_latencies(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [("-5", ">= 0"), ("ten", "milliseconds"), ("nan", ">= 0"), ("inf", "finite"), ("10,10", "twice"), ("", "not")],
)
def test_bad_latencies_get_a_clear_error(text: str, words: str) -> None:
    with pytest.raises(RouteError, match=words):
        parse_latencies(text)


def test_rounds_are_interleaved_every_pair_once_per_repeat_in_rotated_order() -> None:
    assert round_order([0.0, 10.0, 50.0], [1], 3) == [
        (1, 0.0, 1),
        (1, 10.0, 1),
        (1, 50.0, 1),
        (2, 10.0, 1),
        (2, 50.0, 1),
        (2, 0.0, 1),
        (3, 50.0, 1),
        (3, 0.0, 1),
        (3, 10.0, 1),
    ]
    two = round_order([0.0, 50.0], [1, 2], 2)
    assert two[:4] == [(1, 0.0, 1), (1, 0.0, 2), (1, 50.0, 1), (1, 50.0, 2)]
    assert two[4:] == [(2, 0.0, 2), (2, 50.0, 1), (2, 50.0, 2), (2, 0.0, 1)]


# --- the outputs that route a process through the proxies -------------------------------------

passwords = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@given(password=passwords, port=st.integers(min_value=1, max_value=65535))
def test_replacing_the_port_keeps_user_password_host_path_and_query(password: str, port: int) -> None:
    uri = f"postgres://app:{quote(password, safe='')}@db.example:15432/clickstream?sslmode=verify-full"
    moved = urlsplit(with_port(uri, port))
    before = urlsplit(uri)
    assert moved.port == port
    assert (moved.username, moved.password, moved.hostname, moved.path, moved.query) == (
        before.username,
        before.password,
        before.hostname,
        before.path,
        before.query,
    )


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert with_port("https://u:p@[::1]:19200", 40000) == "https://u:p@[::1]:40000"


def outputs() -> dict[str, object]:
    return {
        Output.KAFKA_BOOTSTRAP.value: "127.0.0.1:19092",
        Output.POSTGRES_APP_URI.value: "postgres://app:s%40cret@127.0.0.1:15432/clickstream?sslmode=verify-full",
        Output.POSTGRES_ADMIN_URI.value: "postgres://avnadmin:x@127.0.0.1:15432/clickstream?sslmode=verify-full",
        Output.OPENSEARCH_URI.value: "https://pipe:y@127.0.0.1:19200",
        Output.OPENSEARCH_ADMIN_URI.value: "https://avnadmin:z@127.0.0.1:19200",
        Output.KAFKA_EVENTS_TOPIC.value: "clickstream-events",
        Output.KAFKA_CA_CERT.value: "-----BEGIN CERTIFICATE-----",
    }


def test_the_kafka_proxy_listens_on_the_advertised_port_and_forwards_to_the_proxied_listener() -> None:
    found = {r.name: r for r in routes(outputs(), kafka_proxied_port=19094, kafka_proxy_port=19095)}
    assert (found[KAFKA].listen_port, found[KAFKA].target_port) == (19095, 19094)
    assert (found[POSTGRES].listen_port, found[POSTGRES].target_port) == (0, 15432)
    assert (found[OPENSEARCH].listen_port, found[OPENSEARCH].target_port) == (0, 19200)
    assert {r.listen_host for r in found.values()} == {"127.0.0.1"}


def test_proxied_outputs_move_every_service_address_to_its_proxy_and_nothing_else() -> None:
    original = outputs()
    moved = proxied_outputs(original, {KAFKA: 19095, POSTGRES: 40001, OPENSEARCH: 40002})
    assert moved[Output.KAFKA_BOOTSTRAP.value] == "127.0.0.1:19095"
    assert (
        moved[Output.POSTGRES_APP_URI.value]
        == "postgres://app:s%40cret@127.0.0.1:40001/clickstream?sslmode=verify-full"
    )
    assert moved[Output.POSTGRES_ADMIN_URI.value] == (
        "postgres://avnadmin:x@127.0.0.1:40001/clickstream?sslmode=verify-full"
    )
    assert moved[Output.OPENSEARCH_URI.value] == "https://pipe:y@127.0.0.1:40002"
    assert moved[Output.OPENSEARCH_ADMIN_URI.value] == "https://avnadmin:z@127.0.0.1:40002"
    changed = {k for k in original if original[k] != moved[k]}
    assert changed == {
        Output.KAFKA_BOOTSTRAP.value,
        Output.POSTGRES_APP_URI.value,
        Output.POSTGRES_ADMIN_URI.value,
        Output.OPENSEARCH_URI.value,
        Output.OPENSEARCH_ADMIN_URI.value,
    }


def test_one_service_at_two_addresses_cannot_be_proxied() -> None:
    split = outputs() | {Output.OPENSEARCH_ADMIN_URI.value: "https://avnadmin:z@127.0.0.1:19201"}
    with pytest.raises(RouteError, match="opensearch outputs name more than one address"):
        routes(split, kafka_proxied_port=19094, kafka_proxy_port=19095)


def test_a_list_of_kafka_bootstrap_servers_is_refused() -> None:
    many = outputs() | {Output.KAFKA_BOOTSTRAP.value: "a:1,b:2"}
    with pytest.raises(RouteError, match="one Kafka bootstrap address"):
        routes(many, kafka_proxied_port=19094, kafka_proxy_port=19095)


@given(st.lists(st.sampled_from(["client", "server"]), max_size=40))
def test_a_turn_is_counted_each_time_the_client_speaks_after_the_server_or_first(sides: list[str]) -> None:
    turns = Turns()
    for side in sides:
        turns.saw(side)
    runs = [side for i, side in enumerate(sides) if i == 0 or sides[i - 1] != side]
    assert turns.client_turns == runs.count("client")
