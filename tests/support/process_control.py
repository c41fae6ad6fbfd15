"""Starting, watching and killing pipeline CLI processes of an isolated pipeline, for crash tests."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from tests.support.sink_contents import fetch
from tests.support.world import IsolatedPipeline

FAST_GROUP = {"consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "1000"}
"""A SIGKILLed member's partitions move after 6 s instead of 45 s. Under the consumer group protocol
(KIP-848) these are the group's settings on the broker, not options of the consumer."""


def fast_takeover(world: IsolatedPipeline) -> None:
    """Give the world's group a 6 s session timeout (KIP-848: a group config, set with the admin certificate)."""
    admin = AdminClient(world.settings.kafka.client_config("admin"))
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


def sigkill(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL and reap; returns the exit status (-9 when the kill, not an exit, ended it)."""
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30)


def count_events(world: IsolatedPipeline) -> int:
    return int(fetch(world, "SELECT count(*) AS n FROM events")[0]["n"])


def count_indexed_events(world: IsolatedPipeline) -> int:
    client = world.opensearch()
    client.indices.refresh(index=f"{world.index_prefix}-*")
    return int(client.count(index=f"{world.index_prefix}-events")["count"])


def sessions_behind(world: IsolatedPipeline) -> bool:
    """Is some session row newer than its OpenSearch document (or without one)?"""
    rows = {r["session_id"]: r["version"] for r in fetch(world, "SELECT session_id, version FROM sessions")}
    client = world.opensearch()
    index = f"{world.index_prefix}-sessions"
    client.indices.refresh(index=index)
    found = client.mget(index=index, body={"ids": list(rows)}, _source=False)["docs"]
    indexed = {d["_id"]: d["_version"] for d in found if d.get("found")}
    return any(indexed.get(sid, 0) < version for sid, version in rows.items())
