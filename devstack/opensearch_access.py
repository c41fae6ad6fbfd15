"""Who may do what in the local OpenSearch: the local counterpart of Aiven's OpenSearch ACLs.

On Aiven the Pulumi program gives the pipeline user ``write`` on the patterns of
:attr:`IndexNames.access_patterns` and nothing else (Aiven's ``write`` also allows deleting
documents, which nothing narrower than it avoids). Here the security plugin does the
job with a role per index prefix, narrower on deletion: read and index documents and create indices on
exactly those patterns, plus the cluster-level actions a bulk request and ``pipeline
check`` need. No template, no other index, no security configuration, no deletion of
documents or indices.

Tests and benchmarks give every isolated world a user of its own through
:func:`grant_prefix`, so each of them runs with least privilege too, and a test can show
that one world's credentials cannot touch another's indices. Such a user records the
process that made it (host, pid, and the pid's start time, so a reused pid does not
count); a run killed before it could clean up leaves its user behind, and ``devstack up``
removes every prefix user whose process is gone (:func:`remove_stale_users`).

The security plugin keeps all users in one document of its index, so two runs changing
users at the same moment can get HTTP 409 (a version conflict on that document): every
change here is retried a few times with a short, jittered backoff.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError

from pipeline.config.secret import Secret
from pipeline.config.settings import Settings
from pipeline.contract.names import PIPELINE_USER, IndexNames
from pipeline.sinks.opensearch_client import opensearch_client

ADMIN_USER = "avnadmin"
_API = "/_plugins/_security/api"

#: Cluster-level actions of the pipeline user: ``_bulk`` is checked at the cluster level
#: first (each item's index is then checked against the index permissions), and ``GET /``
#: is what the start-up check calls.
PIPELINE_CLUSTER_ACTIONS: tuple[str, ...] = ("cluster:monitor/main", "indices:data/write/bulk")
#: Index-level actions on the pipeline's own patterns: index (not delete) documents,
#: create next month's events index from the template, and read an index's mapping (the
#: sink checks that the template shaped an index before it writes into it). No ``read``
#: (search, get): the Aiven rule the Pulumi program grants (``write``) has none either, so
#: what works against this stack needs no more there. Not ``crud``: that would add
#: deleting documents and delete-by-query, which the pipeline never does.
PIPELINE_INDEX_ACTIONS: tuple[str, ...] = ("index", "create_index", "indices:admin/mappings/get")


def pipeline_role(names: IndexNames) -> dict[str, Any]:
    """The security plugin role that grants a prefix's indices and nothing else."""
    return {
        "description": f"clickstream pipeline: write {names.prefix} indices only",
        "cluster_permissions": list(PIPELINE_CLUSTER_ACTIONS),
        "index_permissions": [
            {"index_patterns": list(names.access_patterns), "allowed_actions": list(PIPELINE_INDEX_ACTIONS)}
        ],
    }


PREFIX_USER_SUFFIX = "-pipeline"
ROLE_SUFFIX = "-role"
CONFLICT_ATTEMPTS = 8

T = TypeVar("T")


def _retrying(action: Callable[[], T]) -> T:
    """Run a security-API call, retrying the 409 another writer of the security index can cause."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return action()
        except ConflictError:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    raise AssertionError("unreachable")


def _put(client: OpenSearch, kind: str, name: str, body: dict[str, Any]) -> None:
    path = f"{_API}/{kind}/{quote(name, safe='')}"
    _retrying(lambda: client.transport.perform_request("PUT", path, body=body))


def _delete(client: OpenSearch, kind: str, name: str) -> None:
    path = f"{_API}/{kind}/{quote(name, safe='')}"

    def delete() -> None:
        try:
            client.transport.perform_request("DELETE", path)
        except NotFoundError:
            pass

    _retrying(delete)


def _list(client: OpenSearch, kind: str) -> dict[str, Any]:
    return client.transport.perform_request("GET", f"{_API}/{kind}")  # type: ignore[no-any-return]


def ensure_admin(client: OpenSearch, password: str) -> None:
    """``avnadmin`` with every right, as on Aiven (the security REST API included)."""
    _put(client, "internalusers", ADMIN_USER, {"password": password, "backend_roles": []})
    _put(client, "rolesmapping", "all_access", {"users": [ADMIN_USER]})


def grant_prefix(
    client: OpenSearch, *, user: str, password: str, names: IndexNames, attributes: dict[str, str] | None = None
) -> None:
    """Create (or update) ``user`` with a role of its own limited to ``names``' indices."""
    role = f"{user}{ROLE_SUFFIX}"
    _put(client, "roles", role, pipeline_role(names))
    _put(client, "internalusers", user, {"password": password, "backend_roles": [], "attributes": attributes or {}})
    _put(client, "rolesmapping", role, {"users": [user]})


def revoke_prefix(client: OpenSearch, *, user: str) -> None:
    """Remove what :func:`grant_prefix` made; missing pieces are fine."""
    role = f"{user}{ROLE_SUFFIX}"
    _delete(client, "rolesmapping", role)
    _delete(client, "internalusers", user)
    _delete(client, "roles", role)


def prefix_user(names: IndexNames) -> str:
    """The user an isolated world (test or benchmark) gets for its own prefix."""
    return f"{names.prefix}{PREFIX_USER_SUFFIX}"


def owner_attributes() -> dict[str, str]:
    """Who makes a prefix user: this host, this process and its start time (see :func:`owner_alive`)."""
    return {
        "owner_host": socket.gethostname(),
        "owner_pid": str(os.getpid()),
        "owner_started": _process_start(os.getpid()) or "",
    }


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_alive(attributes: dict[str, str]) -> bool:
    """Is the process that made a prefix user still running? (Another host's users are left alone.)"""
    if attributes.get("owner_host") not in (None, socket.gethostname()):
        return True
    pid = attributes.get("owner_pid", "")
    if not pid.isdigit():
        return False
    started = _process_start(int(pid))
    return started is not None and started == attributes.get("owner_started")


def remove_stale_users(client: OpenSearch) -> list[str]:
    """Remove the prefix users (and their roles) left by test or benchmark runs that are gone.

    A prefix user is any ``*-pipeline`` user other than the pipeline's own; it is stale
    when the process recorded in its attributes no longer runs (or none is recorded). A
    role ``*-pipeline-role`` whose user is missing (a run killed half-way through
    :func:`grant_prefix`) goes too. Returns the users removed.
    """
    users = _list(client, "internalusers")
    removed = []
    for name, body in users.items():
        if name == PIPELINE_USER or not name.endswith(PREFIX_USER_SUFFIX):
            continue
        if not owner_alive(dict((body or {}).get("attributes") or {})):
            revoke_prefix(client, user=name)
            removed.append(name)
    alive = set(users) - set(removed)
    for role in _list(client, "roles"):
        user = role[: -len(ROLE_SUFFIX)]
        if role.endswith(PREFIX_USER_SUFFIX + ROLE_SUFFIX) and user != PIPELINE_USER and user not in alive:
            revoke_prefix(client, user=user)
    return removed


@contextmanager
def scoped_user(admin: OpenSearch, base_uri: str, names: IndexNames) -> Iterator[str]:
    """A user limited to ``names``' indices for the duration of the block; yields its URI."""
    user, password = prefix_user(names), new_password()
    grant_prefix(admin, user=user, password=password, names=names, attributes=owner_attributes())
    try:
        yield user_uri(base_uri, user, password)
    finally:
        revoke_prefix(admin, user=user)


@contextmanager
def settings_for_prefix(settings: Settings, names: IndexNames) -> Iterator[Settings]:
    """``settings`` whose pipeline user is a fresh one limited to ``names`` (tests, benchmarks)."""
    admin = opensearch_client(settings.opensearch, "admin")
    try:
        with scoped_user(admin, settings.opensearch.uri.reveal(), names) as uri:
            yield dataclasses.replace(settings, opensearch=dataclasses.replace(settings.opensearch, uri=Secret(uri)))
    finally:
        admin.close()


def user_uri(base_uri: str, user: str, password: str) -> str:
    """``base_uri`` (any user) with ``user:password`` instead of its credentials."""
    parts = urlsplit(base_uri)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def new_password() -> str:
    return secrets.token_urlsafe(24)
