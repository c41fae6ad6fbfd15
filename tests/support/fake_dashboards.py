"""A small HTTPS server that answers the saved-objects import API the way OpenSearch Dashboards does.

No Dashboards server can run here, so the importer is checked against the documented
request shape instead: ``POST /api/saved_objects/_import`` with ``overwrite`` in the query,
the ``osd-xsrf`` header, basic credentials, and a ``multipart/form-data`` body whose
``file`` part has a ``.ndjson`` name. Answers follow Dashboards: ``{"statusCode", "error",
"message"}`` for a refused request, ``{"success", "successCount", "successResults",
"errors"}`` for an import, with ``conflict`` errors for existing ids unless ``overwrite``
and ``missing_references`` for references to objects that are neither stored nor in the
file (in which case nothing is created). The body is parsed here with the standard
library only (``email`` for the multipart, ``json`` per line), independently of the
pipeline's own NDJSON module.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.certs import CertPair, ensure_ca, ensure_leaf


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    file_name: str | None = None
    file_type: str | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeDashboards:
    user: str
    password: str
    stored: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    scripted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """Answers to give before behaving normally (status, JSON body), e.g. a 503 while restarting."""
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Received) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(request)
            if self.scripted:
                return self.scripted.pop(0)
            return self._answer(request)

    def _answer(self, r: Received) -> tuple[int, dict[str, Any]]:
        if r.path != "/api/saved_objects/_import":
            return _boom(404, "Not Found", "Not Found")
        if r.method != "POST":
            return _boom(404, "Not Found", "Not Found")
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if r.headers.get("authorization") != expected:
            return _boom(401, "Unauthorized", "Authentication required")
        if "osd-xsrf" not in r.headers:
            return _boom(400, "Bad Request", "Request must contain a osd-xsrf header.")
        overwrite = r.query.get("overwrite", ["false"])[-1] == "true"
        if overwrite and r.query.get("createNewCopies", ["false"])[-1] == "true":
            return _boom(400, "Bad Request", "[request query]: cannot use [overwrite] with [createNewCopies]")
        parsed = _file_part(r)
        if parsed is None:
            return _boom(400, "Bad Request", "[request body.file]: expected value of type [Stream] but got [undefined]")
        r.file_name, r.file_type, content = parsed
        if not r.file_name.lower().endswith(".ndjson"):
            return _boom(400, "Bad Request", f"Invalid file extension .{r.file_name.rsplit('.', 1)[-1]}")
        try:
            r.objects = [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _boom(400, "Bad Request", f"Unexpected token in JSON: {exc}")
        return self._import(r.objects, overwrite)

    def _import(self, objects: list[dict[str, Any]], overwrite: bool) -> tuple[int, dict[str, Any]]:
        in_file = {(o["type"], o["id"]) for o in objects}
        errors, results = [], []
        for o in objects:
            key = (o["type"], o["id"])
            meta = {"title": o.get("attributes", {}).get("title", "")}
            missing = [
                {"type": ref["type"], "id": ref["id"]}
                for ref in o.get("references", [])
                if (ref["type"], ref["id"]) not in in_file and (ref["type"], ref["id"]) not in self.stored
            ]
            if missing:
                errors.append(
                    {
                        "id": o["id"],
                        "type": o["type"],
                        "title": meta["title"],
                        "meta": meta,
                        "error": {"type": "missing_references", "references": missing},
                    }
                )
            elif key in self.stored and not overwrite:
                errors.append(
                    {
                        "id": o["id"],
                        "type": o["type"],
                        "title": meta["title"],
                        "meta": meta,
                        "error": {"type": "conflict"},
                    }
                )
            else:
                results.append(
                    {
                        "type": o["type"],
                        "id": o["id"],
                        "meta": meta,
                        **({"overwrite": True} if key in self.stored else {}),
                    }
                )
        if errors:
            answer: dict[str, Any] = {"success": False, "successCount": len(results), "errors": errors}
            if results:
                answer["successResults"] = results
            return 200, answer
        for o in objects:
            self.stored[(o["type"], o["id"])] = o
        return 200, {"success": True, "successCount": len(results), "successResults": results}


def _boom(status: int, error: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "error": error, "message": message}


def _file_part(r: Received) -> tuple[str, str, bytes] | None:
    content_type = r.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + r.body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return part.get_filename() or "", part.get_content_type(), payload if isinstance(payload, bytes) else b""
    return None


def server_certificate(directory: Path, *, ca_name: str = "ca") -> tuple[CertPair, CertPair]:
    """A CA and a server certificate for ``localhost`` / ``127.0.0.1`` signed by it."""
    ca = ensure_ca(directory / ca_name)
    leaf = ensure_leaf(
        directory / ca_name,
        ca,
        "dashboards",
        common_name="localhost",
        server_names=("localhost",),
        server_ips=("127.0.0.1",),
        client=False,
    )
    return ca, leaf


@contextmanager
def running(fake: FakeDashboards, leaf: CertPair) -> Iterator[FakeDashboards]:
    """Serve ``fake`` over HTTPS on a free loopback port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            status, answer = fake.handle(request)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(leaf.cert), str(leaf.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
