"""OpenSearch client errors as the pipeline's typed, one-line errors."""

from __future__ import annotations

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from pipeline.errors import ServiceError, SinkUnavailable


def service_error(exc: Exception, doing: str) -> ServiceError:
    """A typed, one-line error for an OpenSearch failure; transient ones become ``SinkUnavailable``.

    The text carries the status and OpenSearch's error type, never the URI (the client
    was built by ``opensearch_client``, whose host list holds no credentials anyway).
    """
    if isinstance(exc, OSConnectionError):
        return SinkUnavailable(f"OpenSearch unreachable while {doing}: {type(exc).__name__}")
    if isinstance(exc, TransportError):
        status = exc.status_code
        kind = error_type(exc.info) or exc.error
        if isinstance(status, int) and (status == 429 or status >= 500):
            return SinkUnavailable(f"OpenSearch busy while {doing}: HTTP {status} {kind}")
        return ServiceError(f"OpenSearch refused {doing}: HTTP {status} {kind}")
    return ServiceError(f"OpenSearch failed while {doing}: {type(exc).__name__}")


def error_type(info: object) -> str | None:
    """``error.type`` from an OpenSearch error body, if it has one."""
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            kind = error.get("type")
            return str(kind) if kind is not None else None
        if isinstance(error, str):
            return error
    return None
