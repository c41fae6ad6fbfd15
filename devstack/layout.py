"""Where the local stack keeps its files, and which ports and versions it uses.

Every knob lives here, read once from the environment with its default, so the rest of
devstack never touches ``os.environ``.

The state directory (``.devstack/`` in the checkout) holds what the user's processes
read: the CA and client certificates, generated passwords and the stack-outputs file.
The services' data lives in the runtime directory. When run as root the services run
as an unprivileged system user (PostgreSQL and OpenSearch refuse to run as root), so
their runtime directory is under ``/var/lib`` where that user can reach it, keyed by
the checkout so two clones never share data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE_USER = "clickstream-devstack"
KAFKA_VERSION = "4.3.1"
OPENSEARCH_VERSION = "2.19.4"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        from devstack.errors import DevstackError

        raise DevstackError(f"{name}={raw!r} is not a port number; unset it or give an integer") from exc


@dataclass(frozen=True)
class Layout:
    state_dir: Path
    runtime_dir: Path
    dist_dir: Path
    run_as: str | None
    kafka_port: int
    kafka_controller_port: int
    kafka_proxied_port: int
    """A second SSL listener for a proxy in front of the broker (benchmarks with added latency)."""
    kafka_proxy_port: int
    """What that listener advertises: where the proxy listens. Nothing does unless a benchmark runs one."""
    postgres_port: int
    opensearch_port: int
    opensearch_transport_port: int
    opensearch_heap: str
    kafka_heap: str
    java_home: Path

    @property
    def outputs_file(self) -> Path:
        return self.state_dir / "stack-outputs.json"

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "certs"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    def service_dir(self, name: str) -> Path:
        return self.runtime_dir / name


def _java_home() -> Path:
    explicit = os.environ.get("DEVSTACK_JAVA_HOME")
    if explicit:
        return Path(explicit)
    for candidate in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk*")):
        if (candidate / "bin" / "java").exists():
            return candidate
    java_home = os.environ.get("JAVA_HOME")
    return Path(java_home) if java_home else Path("/usr")


def load_layout() -> Layout:
    state_dir = Path(os.environ.get("DEVSTACK_STATE_DIR", REPO_ROOT / ".devstack")).resolve()
    is_root = os.geteuid() == 0
    key = hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]
    if is_root:
        base = Path(os.environ.get("DEVSTACK_RUNTIME_BASE", "/var/lib/clickstream-devstack"))
        runtime_dir = base / key
        dist_dir = base / "dist"
    else:
        runtime_dir = state_dir / "runtime"
        dist_dir = state_dir / "dist"
    kafka_port = _int_env("DEVSTACK_KAFKA_PORT", 19092)
    return Layout(
        state_dir=state_dir,
        runtime_dir=runtime_dir,
        dist_dir=dist_dir,
        run_as=SERVICE_USER if is_root else None,
        kafka_port=kafka_port,
        kafka_controller_port=_int_env("DEVSTACK_KAFKA_CONTROLLER_PORT", 19093),
        kafka_proxied_port=_int_env("DEVSTACK_KAFKA_PROXIED_PORT", kafka_port + 2),
        kafka_proxy_port=_int_env("DEVSTACK_KAFKA_PROXY_PORT", kafka_port + 3),
        postgres_port=_int_env("DEVSTACK_POSTGRES_PORT", 15432),
        opensearch_port=_int_env("DEVSTACK_OPENSEARCH_PORT", 19200),
        opensearch_transport_port=_int_env("DEVSTACK_OPENSEARCH_TRANSPORT_PORT", 19300),
        opensearch_heap=os.environ.get("DEVSTACK_OPENSEARCH_HEAP", "2g"),
        kafka_heap=os.environ.get("DEVSTACK_KAFKA_HEAP", "1g"),
        java_home=_java_home(),
    )
