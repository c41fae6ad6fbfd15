"""Building an OpenSearch client from a stack-output URI without letting the credentials leak.

The URI may carry ``user:password@``; they are split off into ``http_auth`` so that the
host list the client prints in its errors and logs never contains them.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from opensearchpy import OpenSearch

from pipeline.config.secret import Secret
from pipeline.errors import ConfigError


def connect_opensearch(uri: Secret, *, timeout: float = 30.0) -> OpenSearch:
    parts = urlsplit(uri.reveal())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the OpenSearch URI in the stack outputs must look like https://user:password@host:port")
    https = parts.scheme == "https"
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return OpenSearch(
        hosts=[{"host": parts.hostname, "port": parts.port or (443 if https else 80), "scheme": parts.scheme}],
        http_auth=auth,
        use_ssl=https,
        verify_certs=https,
        ssl_show_warn=https,
        timeout=timeout,
        http_compress=False,
    )
