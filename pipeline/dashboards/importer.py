"""Import saved objects into OpenSearch Dashboards through its saved-objects import API.

``POST <dashboards>/api/saved_objects/_import?overwrite=true`` with the NDJSON as the
``file`` part of a ``multipart/form-data`` body (its file name must end in ``.ndjson``)
and the ``osd-xsrf`` header Dashboards requires on every write. ``overwrite`` makes a
repeated import replace the same ids instead of reporting conflicts: idempotent.

Credentials come from the Dashboards URI's user info; when it has none, from the
OpenSearch admin URI (on Aiven the same ``avnadmin`` logs into both). They travel only
in the ``Authorization`` header; error lines name the host and port, never the URI.
TLS is verified exactly as for OpenSearch: the system trust store plus
``opensearch_ca_cert``, with hostname checks.

Dashboards answers 200 with ``{"success": false, "errors": [...]}`` when some objects
were refused (missing references, conflicts, unknown types) and a 4xx/5xx with
``{"statusCode", "error", "message"}`` when the request itself was refused; both become
one line. Connection failures and 502/503/504 (a Dashboards node restarting) are retried
a few times with backoff before giving up.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.exceptions import SSLError as Urllib3SSLError

from pipeline.config.secret import Secret
from pipeline.config.settings import OpenSearchSettings
from pipeline.dashboards.ndjson import SavedObject, dumps, loads
from pipeline.errors import ConfigError, ServiceError, first_line
from pipeline.health import describe_tls_failure
from pipeline.sinks.opensearch_client import host_and_port, tls_context

log = logging.getLogger(__name__)

IMPORT_PATH: Final = "/api/saved_objects/_import"
XSRF_HEADER: Final = "osd-xsrf"
UPLOAD_NAME: Final = "clickstream.ndjson"
_TRANSIENT: Final = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to import; ``where`` is the only part that may be printed."""

    base_url: str
    host: str
    port: int
    authorization: Secret | None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ImportResult:
    where: str
    imported: int
    overwritten: int

    def line(self) -> str:
        return (
            f"OpenSearch Dashboards at {self.where}: {self.imported} saved objects imported "
            f"({self.overwritten} replaced)"
        )


def _userinfo(uri: str) -> tuple[str, str] | None:
    parts = urlsplit(uri)
    if not parts.username:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def endpoint(settings: OpenSearchSettings) -> Endpoint:
    """The import endpoint from the stack outputs; ConfigError (never quoting the URI) if unusable."""
    raw = settings.dashboards_uri.reveal().strip()
    if not raw:
        raise ConfigError("the stack has no OpenSearch Dashboards (stack output opensearch_dashboards_uri is empty)")
    host, port = host_and_port(settings.dashboards_uri, output="stack output opensearch_dashboards_uri")
    path = urlsplit(raw).path.rstrip("/")
    credentials = _userinfo(raw) or _userinfo(settings.admin_uri.reveal())
    authorization = None
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
        authorization = Secret(f"Basic {token}")
    netloc = f"[{host}]" if ":" in host else host
    return Endpoint(f"https://{netloc}:{port}{path}", host, port, authorization)


def multipart_body(objects: Sequence[SavedObject]) -> tuple[bytes, str]:
    """The request body and its content type: the objects as one ``.ndjson`` file part named ``file``."""
    data = dumps(objects)
    loads(data)  # the same parser as the shipped file's test: never send what it would refuse
    return urllib3.encode_multipart_formdata({"file": (UPLOAD_NAME, data, "application/ndjson")})


def import_saved_objects(
    settings: OpenSearchSettings,
    objects: Sequence[SavedObject],
    *,
    timeout: float = 30.0,
    attempts: int = 4,
    first_backoff_s: float = 1.0,
) -> ImportResult:
    target = endpoint(settings)
    body, content_type = multipart_body(objects)
    headers = {XSRF_HEADER: "true", "Content-Type": content_type, "Accept": "application/json"}
    if target.authorization is not None:
        headers["Authorization"] = target.authorization.reveal()
    pool = urllib3.PoolManager(
        ssl_context=tls_context(settings.ca_pem),
        retries=False,
        timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
    )
    url = f"{target.base_url}{IMPORT_PATH}?overwrite=true"
    delay = first_backoff_s
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = pool.request("POST", url, body=body, headers=headers, redirect=False)
            except Urllib3SSLError as exc:
                raise ServiceError(
                    f"OpenSearch Dashboards {target.where}: {describe_tls_failure(str(exc), target.host)}"
                ) from None
            except (MaxRetryError, HTTPError, OSError) as exc:
                reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
                if isinstance(reason, Urllib3SSLError):
                    raise ServiceError(
                        f"OpenSearch Dashboards {target.where}: {describe_tls_failure(str(reason), target.host)}"
                    ) from None
                failure = f"not reachable: {type(reason).__name__}"
            else:
                if response.status not in _TRANSIENT:
                    return _result(target, response.status, response.data, len(objects))
                failure = f"busy: HTTP {response.status}"
            if attempt < attempts:
                log.warning("OpenSearch Dashboards %s %s; retrying in %.0f s", target.where, failure, delay)
                time.sleep(delay)
                delay *= 2
        raise ServiceError(
            f"OpenSearch Dashboards {target.where} {failure} after {attempts} attempts; "
            "the saved objects were not imported (run `pipeline dashboards` again later)"
        )
    finally:
        pool.clear()


def _result(target: Endpoint, status: int, data: bytes, sent: int) -> ImportResult:
    body = _json_body(data)
    if status == 401:
        raise ServiceError(
            f"OpenSearch Dashboards {target.where} refused the credentials (HTTP 401); "
            "check the user and password in the stack output opensearch_dashboards_uri"
        )
    if status != 200:
        raise ServiceError(
            f"OpenSearch Dashboards {target.where} refused the import: HTTP {status}{_error_text(body, data)}"
        )
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        raise ServiceError(
            f"OpenSearch Dashboards {target.where} answered the import with something that is not "
            "an import result; check that opensearch_dashboards_uri points at Dashboards"
        )
    errors = body.get("errors") or []
    if not body["success"] or errors:
        shown = ", ".join(_object_error(e) for e in errors[:3]) or "no details given"
        more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
        raise ServiceError(
            f"OpenSearch Dashboards {target.where} refused {len(errors) or 'some'} of {sent} saved "
            f"objects: {shown}{more}"
        )
    results = body.get("successResults") or []
    imported = int(body.get("successCount", len(results)))
    if imported != sent:
        raise ServiceError(f"OpenSearch Dashboards {target.where} imported {imported} of {sent} saved objects")
    replaced = sum(1 for r in results if isinstance(r, dict) and r.get("overwrite"))
    return ImportResult(target.where, imported, replaced)


def _json_body(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _error_text(body: Any, data: bytes) -> str:
    """`` Bad Request: <message>`` from Dashboards' error shape, else the first line of the body."""
    if isinstance(body, dict):
        label = body.get("error")
        message = body.get("message")
        parts = [str(p) for p in (label, message) if p]
        if parts:
            return " " + first_line(": ".join(parts))
    text = data.decode("utf-8", "replace").strip()
    return f" {first_line(text)}" if text else ""


def _object_error(error: object) -> str:
    if not isinstance(error, dict):
        return "an unreadable error"
    kind = error.get("error", {}).get("type") if isinstance(error.get("error"), dict) else None
    return f"{error.get('type', '?')} {error.get('id', '?')} ({kind or 'error'})"
