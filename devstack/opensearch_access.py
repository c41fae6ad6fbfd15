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
that one world's credentials cannot touch another's indices.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from pipeline.config.secret import Secret
from pipeline.config.settings import Settings
from pipeline.sinks.opensearch.templates import IndexNames
from pipeline.sinks.opensearch_client import opensearch_client

ADMIN_USER = "avnadmin"
PIPELINE_USER = "clickstream-pipeline"
_API = "/_plugins/_security/api"

#: Cluster-level actions of the pipeline user: ``_bulk`` is checked at the cluster level
#: first (each item's index is then checked against the index permissions), the read-only
#: multi-document requests (mget, msearch, scroll) likewise, and ``GET /`` is what the
#: start-up check calls. Not ``cluster_composite_ops``: that adds reindex and alias changes.
PIPELINE_CLUSTER_ACTIONS: tuple[str, ...] = ("cluster:monitor/main", "indices:data/write/bulk", "cluster_composite_ops_ro")
#: Index-level actions on the pipeline's own patterns: read, index (not delete) documents,
#: create next month's events index from the template, and read an index's mapping (the
#: sink checks that the template shaped an index before it writes into it). Not ``crud``:
#: that would add deleting documents and delete-by-query, which the pipeline never does.
PIPELINE_INDEX_ACTIONS: tuple[str, ...] = ("read", "index", "create_index", "indices:admin/mappings/get")


def pipeline_role(names: IndexNames) -> dict[str, Any]:
    """The security plugin role that grants a prefix's indices and nothing else."""
    return {
        "description": f"clickstream pipeline: read and write {names.prefix} indices only",
        "cluster_permissions": list(PIPELINE_CLUSTER_ACTIONS),
        "index_permissions": [
            {"index_patterns": list(names.access_patterns), "allowed_actions": list(PIPELINE_INDEX_ACTIONS)}
        ],
    }


def _put(client: OpenSearch, kind: str, name: str, body: dict[str, Any]) -> None:
    client.transport.perform_request("PUT", f"{_API}/{kind}/{quote(name, safe='')}", body=body)


def _delete(client: OpenSearch, kind: str, name: str) -> None:
    try:
        client.transport.perform_request("DELETE", f"{_API}/{kind}/{quote(name, safe='')}")
    except NotFoundError:
        pass


def ensure_admin(client: OpenSearch, password: str) -> None:
    """``avnadmin`` with every right, as on Aiven (the security REST API included)."""
    _put(client, "internalusers", ADMIN_USER, {"password": password, "backend_roles": []})
    _put(client, "rolesmapping", "all_access", {"users": [ADMIN_USER]})


def grant_prefix(client: OpenSearch, *, user: str, password: str, names: IndexNames) -> None:
    """Create (or update) ``user`` with a role of its own limited to ``names``' indices."""
    role = f"{user}-role"
    _put(client, "roles", role, pipeline_role(names))
    _put(client, "internalusers", user, {"password": password, "backend_roles": []})
    _put(client, "rolesmapping", role, {"users": [user]})


def revoke_prefix(client: OpenSearch, *, user: str) -> None:
    """Remove what :func:`grant_prefix` made; missing pieces are fine."""
    role = f"{user}-role"
    _delete(client, "rolesmapping", role)
    _delete(client, "internalusers", user)
    _delete(client, "roles", role)


def prefix_user(names: IndexNames) -> str:
    """The user an isolated world (test or benchmark) gets for its own prefix."""
    return f"{names.prefix}-pipeline"


@contextmanager
def scoped_user(admin: OpenSearch, base_uri: str, names: IndexNames) -> Iterator[str]:
    """A user limited to ``names``' indices for the duration of the block; yields its URI."""
    user, password = prefix_user(names), new_password()
    grant_prefix(admin, user=user, password=password, names=names)
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
