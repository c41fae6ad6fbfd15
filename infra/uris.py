"""Pure helpers that turn Aiven service attributes into the connection strings we export.

They live apart from the Pulumi component so they can be unit-tested with plain values:
a password with ``@``, ``/`` or ``:`` must not corrupt a URI, and a port that arrives as
``12693.0`` (Pulumi's wire format carries numbers as floats) must not become
``host:12693.0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

T = TypeVar("T")

#: libpq verifies the server certificate against the CA and the host name; the project CA
#: is exported next to the URI so clients can do so.
POSTGRES_SSLMODE = "verify-full"


def port_number(port: int | float | str) -> int:
    """Return ``port`` as an int, accepting integral floats and digit strings, else raise."""
    if isinstance(port, bool):
        raise ValueError(f"not a port: {port!r}")
    if isinstance(port, float):
        if not port.is_integer():
            raise ValueError(f"not a port: {port!r}")
        port = int(port)
    elif isinstance(port, str):
        if not port.strip().isdigit():
            raise ValueError(f"not a port: {port!r}")
        port = int(port)
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def host_port(host: str, port: int | float | str) -> str:
    """Return ``host:port``, the shape Kafka clients expect for ``bootstrap.servers``."""
    if not host:
        raise ValueError("empty host")
    return f"{host}:{port_number(port)}"


def _credentials(user: str, password: str) -> str:
    if not user:
        raise ValueError("empty user name")
    return f"{quote(user, safe='')}:{quote(password, safe='')}"


def postgres_uri(
    user: str,
    password: str,
    host: str,
    port: int | float | str,
    database: str,
    sslmode: str = POSTGRES_SSLMODE,
) -> str:
    """Return a libpq URI with url-quoted credentials and the given ``sslmode``."""
    query = urlencode({"sslmode": sslmode})
    return f"postgres://{_credentials(user, password)}@{host_port(host, port)}/{quote(database, safe='')}?{query}"


def with_database(uri: str, database: str, sslmode: str = POSTGRES_SSLMODE) -> str:
    """Point an existing PostgreSQL URI at ``database`` and set its ``sslmode``.

    Aiven's service URI connects the admin user to ``defaultdb`` with ``sslmode=require``;
    migrations need the admin user in the application database, with the server verified.
    The credentials are kept byte for byte (Aiven already encodes them).
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise ValueError("not a PostgreSQL URI")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "sslmode"]
    query.append(("sslmode", sslmode))
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database, safe=""), urlencode(query), ""))


def https_uri(user: str, password: str, host: str, port: int | float | str) -> str:
    """Return ``https://user:password@host:port`` with url-quoted credentials (OpenSearch's shape)."""
    return f"https://{_credentials(user, password)}@{host_port(host, port)}"


def first(items: Sequence[T] | None, what: str) -> T:
    """Return the first element of a provider list block, with a clear error when it is empty."""
    if not items:
        raise ValueError(f"the Aiven provider returned no {what} block")
    return items[0]
