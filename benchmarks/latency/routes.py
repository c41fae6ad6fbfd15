"""Which proxies a latency run needs, and the stack outputs that send a pipeline process through them.

Pure functions of the stack outputs: the proxies' targets are read from them, and a copy
of them with each service's port replaced by its proxy's is what ``pipeline --outputs``
gets. Hosts never change, so every TLS client still checks the certificate against the
name it always used.

Kafka is the exception to "point the client at the proxy": a client connects to the
addresses the broker advertises, so the local broker has a second listener
(``devstack/kafka.py``, ``PROXIED``) that advertises the proxy's port; the proxy forwards
to that listener, and every connection of the client, bootstrap and after, goes through it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from benchmarks.latency.proxy import Route
from pipeline.contract.outputs import Output

KAFKA, POSTGRES, OPENSEARCH = "kafka", "postgres", "opensearch"
SERVICE_OUTPUTS: Mapping[str, tuple[Output, ...]] = {
    KAFKA: (Output.KAFKA_BOOTSTRAP,),
    POSTGRES: (Output.POSTGRES_APP_URI, Output.POSTGRES_ADMIN_URI),
    OPENSEARCH: (Output.OPENSEARCH_URI, Output.OPENSEARCH_ADMIN_URI),
}
"""Every output that holds an address of the service (all of one service must agree)."""


class RouteError(ValueError):
    """The stack outputs cannot be routed through proxies (and why)."""


def parse_latencies(text: str) -> list[float]:
    """``"0,10,50"`` -> ``[0.0, 10.0, 50.0]``: added round-trip times in ms, 0 always first."""
    values: list[float] = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise RouteError(f"--latency-ms takes milliseconds separated by commas, not {part!r}") from None
        if not value >= 0 or value == float("inf"):
            raise RouteError(f"a round-trip time must be a finite number of milliseconds >= 0, not {part}")
        if value in values:
            raise RouteError(f"round-trip time {part} ms is listed twice")
        values.append(value)
    if 0.0 not in values:
        values.append(0.0)  # the ratios are to the 0 ms run of the same benchmark run
    return sorted(values)


def split_address(address: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RouteError(f"{what} must be one host:port, not {address!r}")
    return host.strip("[]"), int(port)


def uri_address(uri: str, what: str) -> tuple[str, int]:
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise RouteError(f"{what} must name a host and a port")
    return parts.hostname, port


def with_port(uri: str, port: int) -> str:
    """``uri`` with its port replaced; user, password, host, path and query kept as they are."""
    parts = urlsplit(uri)
    userinfo, at, _ = parts.netloc.rpartition("@")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{port}"))


def service_address(outputs: Mapping[str, object], service: str) -> tuple[str, int]:
    """Where ``service`` listens, per the outputs; RouteError if its outputs disagree."""
    found = set()
    for output in SERVICE_OUTPUTS[service]:
        value = str(outputs.get(output.value, ""))
        if output is Output.KAFKA_BOOTSTRAP:
            if "," in value:
                raise RouteError("the latency proxy handles one Kafka bootstrap address, not a list")
            found.add(split_address(value, output.value))
        else:
            found.add(uri_address(value, output.value))
    if len(found) != 1:
        raise RouteError(f"the {service} outputs name more than one address; cannot put one proxy in front")
    return found.pop()


def routes(outputs: Mapping[str, object], *, kafka_proxied_port: int, kafka_proxy_port: int) -> list[Route]:
    """The three proxies: Kafka on the advertised proxy port in front of the proxied listener,
    PostgreSQL and OpenSearch on any free port in front of the service itself."""
    kafka_host, _ = service_address(outputs, KAFKA)
    pg_host, pg_port = service_address(outputs, POSTGRES)
    os_host, os_port = service_address(outputs, OPENSEARCH)
    return [
        Route(KAFKA, kafka_host, kafka_proxy_port, kafka_host, kafka_proxied_port),
        Route(POSTGRES, pg_host, 0, pg_host, pg_port),
        Route(OPENSEARCH, os_host, 0, os_host, os_port),
    ]


def proxied_outputs(outputs: Mapping[str, object], ports: Mapping[str, int]) -> dict[str, object]:
    """A copy of ``outputs`` whose service addresses are the proxies' (``ports``: service -> proxy port)."""
    out = dict(outputs)
    for service, names in SERVICE_OUTPUTS.items():
        port = ports[service]
        for output in names:
            value = str(outputs[output.value])
            if output is Output.KAFKA_BOOTSTRAP:
                host, _ = split_address(value, output.value)
                out[output.value] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            else:
                out[output.value] = with_port(value, port)
    return out


def check_proxied_listener(host: str, port: int) -> None:
    """Raise :class:`RouteError` unless the broker's proxied listener answers (a stack started
    before devstack had it does not)."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        raise RouteError(
            f"nothing listens on the broker's proxied listener {host}:{port}: the local Kafka was started "
            "before it existed; restart it (devstack stop kafka && devstack up)"
        ) from None
