"""OpenSearch on the local stack: HTTPS with the stack CA, a user per request, and documents that come back."""

from __future__ import annotations

import uuid

from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import opensearch_client


def test_index_and_search_a_document(settings: Settings) -> None:
    client = opensearch_client(settings.opensearch, "admin")
    index = f"it-{uuid.uuid4().hex[:10]}"
    client.indices.create(index=index, body={"mappings": {"properties": {"page": {"type": "keyword"}}}})
    try:
        client.index(index=index, id="e-1", body={"page": "/product/42"}, refresh="wait_for")
        hits = client.search(index=index, body={"query": {"term": {"page": "/product/42"}}})["hits"]
        assert hits["total"]["value"] == 1
        assert hits["hits"][0]["_id"] == "e-1"
        assert client.search(index=index, body={"query": {"term": {"page": "/other"}}})["hits"]["total"]["value"] == 0
    finally:
        client.indices.delete(index=index)
