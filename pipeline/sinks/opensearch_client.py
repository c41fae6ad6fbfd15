"""Building an OpenSearch client from the stack outputs without letting the credentials leak.

The URI may carry ``user:password@``; they are split off into ``http_auth`` so that the
host list the client prints in its errors and logs never contains them.

HTTPS is always verified: against the system's trust store (Aiven's endpoint has a
browser-recognised certificate) plus the stack's ``opensearch_ca_cert`` when there is
one (the local stack signs its node certificate with its own CA). There is no switch
that turns verification off; plain ``http://`` is accepted only because a URI that says
so cannot be verified anyway, and ``pipeline check`` reports it.
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


def connect_opensearch(uri: Secret, *, ca_pem: str = "", timeout: float = 30.0) -> OpenSearch:
    parts = urlsplit(uri.reveal())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the OpenSearch URI in the stack outputs must look like https://user:password@host:port")
    https = parts.scheme == "https"
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    tls: dict[str, object] = {"use_ssl": True, "ssl_context": tls_context(ca_pem)} if https else {}
    return OpenSearch(
        hosts=[{"host": parts.hostname, "port": parts.port or (443 if https else 80), "scheme": parts.scheme}],
        http_auth=auth,
        timeout=timeout,
        http_compress=False,
        **tls,
    )


def opensearch_client(settings: OpenSearchSettings, role: Role = "app", *, timeout: float = 30.0) -> OpenSearch:
    """A client for the pipeline's own user (``app``) or the admin user (templates, tests, benchmarks)."""
    uri = settings.admin_uri if role == "admin" else settings.uri
    return connect_opensearch(uri, ca_pem=settings.ca_pem, timeout=timeout)
