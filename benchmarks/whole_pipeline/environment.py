"""What a figure of this run must be read against: the machine, and the versions of everything measured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

import confluent_kafka

from benchmarks.whole_pipeline.procs import pids
from benchmarks.whole_pipeline.records import Git, Machine, Versions
from devstack.layout import KAFKA_VERSION
from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.sink_readers import rows

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "clickstream-pipeline",
    "confluent-kafka",
    "psycopg",
    "psycopg-binary",
    "opensearch-py",
    "msgspec",
    "click",
    "matplotlib",
)
"""The Python packages whose versions the report names."""


def machine_info() -> Machine:
    """Cores, memory and CPU model: what a figure from this run must be read against."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 2**20, 2)
                break
    except OSError:
        pass
    return Machine(
        cores=os.cpu_count(),
        memory_gib=memory,
        cpu_model=model or platform.processor() or None,
        kernel=platform.release(),
        hostname=platform.node(),
        load_average_before=list(os.getloadavg()),
    )


def _kafka_version() -> str:
    """The running broker's version from its jar name (local stack), else the devstack pin."""
    for pid in pids():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in args:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == b"-cp":
                for directory in args[i + 1].decode(errors="replace").split(":"):
                    for jar in Path(directory.rstrip("*")).glob("kafka_2.13-*.jar"):
                        match = re.fullmatch(r"kafka_2\.13-([\d.]+)\.jar", jar.name)
                        if match:
                            return match.group(1)
    return f"{KAFKA_VERSION} (devstack pin; broker process not found)"


def versions(settings: Settings) -> Versions:
    """Versions of everything whose speed is measured, read from the running services where possible."""
    (server_version,) = rows(settings, "SHOW server_version")[0].values()
    client = opensearch_client(settings.opensearch, "admin")
    try:
        info = client.info()["version"]
    finally:
        client.close()
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return Versions(
        python=f"{platform.python_implementation()} {platform.python_version()}",
        kafka=_kafka_version(),
        librdkafka=confluent_kafka.libversion()[0],
        postgresql=str(server_version),
        opensearch=f"{info.get('distribution', 'opensearch')} {info['number']}",
        packages=packages,
        git=_git(),
    )


def _git() -> Git:
    def run(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    status = run("status", "--porcelain")
    return Git(commit=run("rev-parse", "HEAD"), uncommitted_changes=bool(status) if status is not None else None)
