"""Building an OpenSearch client from the stack outputs without letting the credentials leak.

The URI may carry ``user:password@``; they are split off into ``http_auth`` so that the
host list the client prints in its errors and logs never contains them.

Only ``https://`` is accepted, always verified: against the system's trust store
(Aiven's endpoint has a browser-recognised certificate) plus the stack's
``opensearch_ca_cert`` when there is one (the local stack signs its node certificate with
its own CA), with hostname checks. There is no switch that turns verification off, and
no plain-HTTP path that would send the password in clear text.
"""

from __future__ import annotations

import ssl
from typing import Literal
from urllib.parse import unquote, urlsplit

from opensearchpy import OpenSearch

from pipeline.config.secret import Secret
from pipeline.config.settings import OpenSearchSettings
from pipeline.errors import ConfigError

Role = Literal["app", "admin"]


def tls_context(ca_pem: str = "") -> ssl.SSLContext:
    """The system's trust store, plus ``ca_pem`` when given; hostnames are checked."""
    context = ssl.create_default_context()
    if ca_pem.strip():
        try:
            context.load_verify_locations(cadata=ca_pem)
        except ssl.SSLError:
            raise ConfigError(
                "stack output opensearch_ca_cert is not a PEM certificate; re-export the stack outputs"
            ) from None
    return context


def host_and_port(uri: Secret, *, output: str = "the OpenSearch URI in the stack outputs") -> tuple[str, int]:
    """The only parts of an OpenSearch URI that are safe to print; ConfigError if they are not usable.

    The error never quotes the URI: a password with an unescaped ``/`` or ``#`` would
    otherwise be read as the port, and a parser's message would echo part of it.
    """
    parts = urlsplit(uri.reveal())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "https" or not parts.hostname or port == -1:
        raise ConfigError(
            f"{output} must look like https://user:password@host:port "
            "(HTTPS only; percent-encode any '/', '#', '?' or '@' in the user or password)"
        )
    return parts.hostname, port or 443


def connect_opensearch(uri: Secret, *, ca_pem: str = "", timeout: float = 30.0) -> OpenSearch:
    host, port = host_and_port(uri)
    parts = urlsplit(uri.reveal())
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return OpenSearch(
        hosts=[{"host": host, "port": port, "scheme": "https"}],
        http_auth=auth,
        timeout=timeout,
        http_compress=False,
        use_ssl=True,
        ssl_context=tls_context(ca_pem),
    )


def opensearch_client(settings: OpenSearchSettings, role: Role = "app", *, timeout: float = 30.0) -> OpenSearch:
    """A client for the pipeline's own user (``app``) or the admin user (templates, tests, benchmarks)."""
    uri = settings.admin_uri if role == "admin" else settings.uri
    return connect_opensearch(uri, ca_pem=settings.ca_pem, timeout=timeout)
