"""Starting, watching and killing pipeline CLI processes of an isolated pipeline, for crash tests."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from tests.support.kafka_offsets import admin_client
from tests.support.sink_contents import fetch
from tests.support.sink_readers import document_count, documents
from tests.support.world import IsolatedPipeline

_NOW = re.compile(r"assigned partitions .*\(now \[([0-9, ]*)\]\)")
_GONE = re.compile(r"(?:revoked|lost) partitions \[([0-9, ]*)\]")

FAST_GROUP = {"consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "1000"}
"""A SIGKILLed member's partitions move after 6 s instead of 45 s. Under the consumer group protocol
(KIP-848) these are the group's settings on the broker, not options of the consumer."""


def fast_takeover(world: IsolatedPipeline) -> None:
    """Give the world's group a 6 s session timeout (KIP-848: a group config, set with the admin certificate)."""
    admin = admin_client(world.settings)
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in FAST_GROUP.items()]
    resource = ConfigResource(ResourceType.GROUP, world.topics.group, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()


def wait_for(
    condition: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``condition`` until true; fail on timeout, or early if ``process`` died meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None else ""
            raise AssertionError(f"process exited {process.returncode} while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_until_assigned(logs: list[Path], *, timeout: float) -> None:
    """Wait until every consumer logging to ``logs`` has been assigned partitions (its group is formed)."""
    wait_for(
        lambda: all("assigned partitions" in log.read_text() for log in logs),
        what="every consumer owning partitions",
        timeout=timeout,
    )


def owned_partitions(log_text: str) -> set[int]:
    """The partitions a consumer owns now, replayed from its assigned/revoked/lost log lines."""
    owned: set[int] = set()
    for line in log_text.splitlines():
        if m := _NOW.search(line):
            owned = {int(p) for p in m.group(1).split(",") if p.strip()}
        elif m := _GONE.search(line):
            owned -= {int(p) for p in m.group(1).split(",") if p.strip()}
    return owned


def terminate(processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int]:
    """SIGTERM every process still running (it finishes its batch and commits); their exit codes, in order."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    return [process.wait(timeout=timeout) for process in processes]


def sigkill(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL and reap; returns the exit status (-9 when the kill, not an exit, ended it)."""
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30)


def count_events(world: IsolatedPipeline) -> int:
    return int(fetch(world, "SELECT count(*) AS n FROM events")[0]["n"])


def count_indexed_events(world: IsolatedPipeline) -> int:
    return document_count(world.opensearch(), f"{world.index_prefix}-events")


def sessions_behind(world: IsolatedPipeline) -> bool:
    """Is some session row newer than its OpenSearch document (or without one)?"""
    versions = {r["session_id"]: r["version"] for r in fetch(world, "SELECT session_id, version FROM sessions")}
    found = documents(world.opensearch(), f"{world.index_prefix}-sessions", list(versions))
    return any(found[sid]["_version"] < version if sid in found else True for sid, version in versions.items())
