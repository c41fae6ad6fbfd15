"""The pipeline's OpenSearch credentials reach its own indices and nothing else.

Run against the local stack's OpenSearch with its security plugin: the stack's pipeline
user (``opensearch_uri``), and users made for isolated index prefixes the same way the
stack makes that one. Every refusal is checked as the server's own answer (HTTP 403, or
a 403 on the bulk item), never inferred from the absence of data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthenticationException, AuthorizationException, SSLError

from devstack.opensearch_access import PIPELINE_USER
from infra.component import PIPELINE_INDEX_PATTERNS
from pipeline.config.secret import Secret
from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import connect_opensearch, opensearch_client
from tests.support.opensearch_prefix import private_prefix_user


@pytest.fixture
def admin(opensearch_admin: OpenSearch) -> OpenSearch:
    return opensearch_admin


@pytest.fixture
def app(settings: Settings) -> Iterator[OpenSearch]:
    client = opensearch_client(settings.opensearch, "app")
    yield client
    client.close()


@pytest.fixture
def foreign_index(admin: OpenSearch) -> Iterator[str]:
    """An index that is not the pipeline's (another team's data), holding one document."""
    index = f"shop-orders-{uuid.uuid4().hex[:10]}"
    admin.indices.create(index=index)
    admin.index(index=index, id="o-1", body={"total": 12.5}, refresh=True)
    yield index
    admin.indices.delete(index=index, ignore=[404])


def refused(action: Callable[[], Any]) -> bool:
    try:
        action()
    except AuthorizationException:
        return True
    return False


def bulk_item_status(client: OpenSearch, index: str) -> int:
    response = client.bulk(body=[{"index": {"_index": index, "_id": "x-1"}}, {"total": 1}])
    return int(response["items"][0]["index"]["status"])


def test_the_stack_grants_the_pipeline_user_exactly_its_indices_and_actions(admin: OpenSearch) -> None:
    """The role as the server holds it, against literals: widening it in code fails here."""
    role = admin.transport.perform_request("GET", f"/_plugins/_security/api/roles/{PIPELINE_USER}-role")
    body = role[f"{PIPELINE_USER}-role"]
    assert sorted(body["cluster_permissions"]) == ["cluster:monitor/main", "indices:data/write/bulk"]
    assert [(sorted(p["index_patterns"]), sorted(p["allowed_actions"])) for p in body["index_permissions"]] == [
        (
            ["clickstream-events*", "clickstream-sessions*"],
            ["create_index", "index", "indices:admin/mappings/get"],
        ),
    ]
    assert set(PIPELINE_INDEX_PATTERNS) == {"clickstream-events*", "clickstream-sessions*"}  # what Aiven gets
    mapping = admin.transport.perform_request("GET", f"/_plugins/_security/api/rolesmapping/{PIPELINE_USER}-role")
    assert mapping[f"{PIPELINE_USER}-role"]["users"] == [PIPELINE_USER]


def test_the_pipeline_user_cannot_touch_other_indices(app: OpenSearch, admin: OpenSearch, foreign_index: str) -> None:
    assert refused(lambda: app.search(index=foreign_index))
    assert refused(lambda: app.get(index=foreign_index, id="o-1"))
    assert refused(lambda: app.index(index=foreign_index, id="o-2", body={"total": 1}))
    assert refused(lambda: app.delete(index=foreign_index, id="o-1"))
    assert refused(lambda: app.indices.delete(index=foreign_index))
    assert bulk_item_status(app, foreign_index) == 403
    new_index = f"shop-returns-{uuid.uuid4().hex[:10]}"
    assert refused(lambda: app.indices.create(index=new_index))
    # What the admin sees is untouched: the one original document, no new index.
    admin.indices.refresh(index=foreign_index)
    assert admin.count(index=foreign_index)["count"] == 1
    assert not admin.indices.exists(index=new_index)


def test_the_pipeline_user_cannot_administer_the_cluster(app: OpenSearch) -> None:
    name = f"lp-{uuid.uuid4().hex[:10]}"
    assert refused(lambda: app.indices.put_index_template(name=name, body={"index_patterns": [f"{name}-*"]}))
    assert refused(lambda: app.cluster.put_settings(body={"transient": {"cluster.routing.allocation.enable": "none"}}))
    assert refused(lambda: app.cat.indices())
    assert refused(lambda: app.search(index=".opendistro_security"))
    assert refused(lambda: app.transport.perform_request("GET", "/_plugins/_security/api/internalusers"))
    assert refused(lambda: app.search(index="*"))


def test_the_pipeline_user_deletes_nothing_even_in_its_own_indices(settings: Settings, admin: OpenSearch) -> None:
    """Retention (dropping an old month) and deletions are admin decisions; the consumer only adds and updates.

    (Delete-by-query is not tried: the local distribution lacks the module that serves it.)"""
    with private_prefix_user(settings, admin) as user:
        own, index = user.client, f"{user.names.events_alias}-2001.01"
        own.indices.create(index=index)
        assert own.index(index=index, id="e-1", body={"page": "/"}, refresh=True)["result"] == "created"
        assert refused(lambda: own.delete(index=index, id="e-1"))
        deleted_in_bulk = own.bulk(body=[{"delete": {"_index": index, "_id": "e-1"}}])["items"][0]["delete"]
        assert deleted_in_bulk["status"] == 403
        assert refused(lambda: own.indices.delete(index=index))
        assert admin.get(index=index, id="e-1")["_source"] == {"page": "/"}


def test_the_pipeline_user_reads_nothing_back_like_the_aiven_write_rule(settings: Settings, admin: OpenSearch) -> None:
    """Aiven's ``write`` permission has no search or get: neither has the local role, so the
    pipeline is proven here not to need them there."""
    with private_prefix_user(settings, admin) as user:
        own, index = user.client, f"{user.names.events_alias}-2001.01"
        own.indices.create(index=index)
        assert own.index(index=index, id="e-1", body={"page": "/"}, refresh=True)["result"] == "created"
        assert refused(lambda: own.get(index=index, id="e-1"))
        assert refused(lambda: own.search(index=index))
        assert refused(lambda: own.mget(index=index, body={"ids": ["e-1"]}))
        assert refused(lambda: own.count(index=index))
        assert "page" in own.indices.get_mapping(index=index)[index]["mappings"]["properties"]  # what it needs
        assert admin.get(index=index, id="e-1")["_source"] == {"page": "/"}


def test_one_prefix_user_cannot_reach_another_prefix(settings: Settings, admin: OpenSearch) -> None:
    with private_prefix_user(settings, admin) as one, private_prefix_user(settings, admin) as other:
        writer, intruder = one.client, other.client
        index = f"{one.names.events_alias}-2001.01"
        writer.indices.create(index=index)
        writer.index(index=index, id="e-1", body={"page": "/"}, refresh=True)
        assert refused(lambda: intruder.search(index=index))
        assert refused(lambda: intruder.get(index=index, id="e-1"))
        assert bulk_item_status(intruder, index) == 403
        assert refused(lambda: intruder.indices.create(index=f"{one.names.sessions_alias}-v9"))
        # ...while the intruder's own prefix works, so the refusals above are about the prefix.
        own_index = f"{other.names.events_alias}-2001.01"
        intruder.indices.create(index=own_index)
        assert bulk_item_status(intruder, own_index) == 201
        assert admin.get(index=index, id="e-1")["_source"] == {"page": "/"}


def test_https_is_verified_against_the_stack_ca(settings: Settings) -> None:
    """Without the stack CA the node's certificate is not trusted: verification is really on."""
    with closing(connect_opensearch(settings.opensearch.uri, ca_pem="", timeout=10)) as untrusting:
        with pytest.raises(SSLError, match="certificate verify failed"):
            untrusting.info()
    with closing(
        connect_opensearch(settings.opensearch.uri, ca_pem=settings.opensearch.ca_pem, timeout=10)
    ) as trusting:
        assert trusting.info()["version"]["number"]


def test_a_wrong_password_is_refused(settings: Settings) -> None:
    uri = settings.opensearch.uri.reveal()
    user_part, host_part = uri.split("@", 1)
    wrong = Secret(user_part.rsplit(":", 1)[0] + ":not-the-password@" + host_part)
    with closing(connect_opensearch(wrong, ca_pem=settings.opensearch.ca_pem, timeout=10)) as client:
        with pytest.raises(AuthenticationException) as caught:
            client.info()
    assert caught.value.status_code == 401
