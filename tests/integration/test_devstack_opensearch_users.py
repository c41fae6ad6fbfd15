"""OpenSearch users of test and benchmark worlds: stale ones removed, concurrent changes retried."""

from __future__ import annotations

import subprocess
import sys
import threading

from opensearchpy import OpenSearch

from devstack.opensearch_access import (
    _list,
    _process_start,
    _put,
    grant_prefix,
    new_password,
    owner_attributes,
    pipeline_role,
    prefix_user,
    remove_stale_users,
    revoke_prefix,
)
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from tests.support.opensearch_prefix import private_names, private_prefix_user


def names() -> IndexNames:
    return private_names()


def test_users_of_runs_that_are_gone_are_removed_and_live_ones_kept(
    settings: Settings, opensearch_admin: OpenSearch
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    gone = owner_attributes() | {"owner_pid": str(child.pid), "owner_started": _process_start(child.pid) or "x"}
    child.wait()
    dead, legacy, orphan = names(), names(), names()
    grant_prefix(opensearch_admin, user=prefix_user(dead), password=new_password(), names=dead, attributes=gone)
    grant_prefix(opensearch_admin, user=prefix_user(legacy), password=new_password(), names=legacy)
    _put(opensearch_admin, "roles", f"{prefix_user(orphan)}-role", pipeline_role(orphan))  # killed mid-grant
    with private_prefix_user(settings, opensearch_admin) as running:  # this run's own user, as every test makes it
        live = running.names
        removed = remove_stale_users(opensearch_admin)
        assert {prefix_user(dead), prefix_user(legacy)} <= set(removed) and prefix_user(live) not in removed
        users, roles = _list(opensearch_admin, "internalusers"), _list(opensearch_admin, "roles")
        assert prefix_user(live) in users and f"{prefix_user(live)}-role" in roles
        for stale in (dead, legacy, orphan):
            assert prefix_user(stale) not in users and f"{prefix_user(stale)}-role" not in roles
        assert "clickstream-pipeline" in users and "avnadmin" in users


def test_concurrent_runs_changing_users_at_once_all_succeed(opensearch_admin: OpenSearch) -> None:
    worlds = [names() for _ in range(4)]
    start = threading.Barrier(len(worlds))
    errors: list[BaseException] = []

    def churn(world: IndexNames) -> None:
        try:
            start.wait(30)
            for _ in range(2):
                grant_prefix(
                    opensearch_admin,
                    user=prefix_user(world),
                    password=new_password(),
                    names=world,
                    attributes=owner_attributes(),
                )
                revoke_prefix(opensearch_admin, user=prefix_user(world))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(w,)) for w in worlds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    users = _list(opensearch_admin, "internalusers")
    assert not any(prefix_user(w) in users for w in worlds)
