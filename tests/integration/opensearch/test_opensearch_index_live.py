"""The OpenSearch sink against the local stack's real OpenSearch, in indices of a random prefix."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.errors import ConfigError, IndexingError
from pipeline.sinks.opensearch.documents import encode_event_document, session_document
from pipeline.sinks.opensearch.index import OpenSearchIndex
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL, replicas_for
from pipeline.sinks.opensearch.templates import ensure_templates
from tests.support.events import (
    T0,
    UTC,
    envelope,
    make_event,
    make_page_view,
    make_search,
    session_row,
)
from tests.support.opensearch_prefix import private_prefix
from tests.support.sink_readers import document_count, documents


@pytest.fixture
def admin(opensearch_admin: OpenSearch) -> OpenSearch:
    return opensearch_admin


@pytest.fixture
def names(settings: Settings, admin: OpenSearch) -> Iterator[IndexNames]:
    with private_prefix(admin, templates=settings, now=T0) as names:
        yield names


@pytest.fixture
def scoped(settings: Settings, names: IndexNames) -> Iterator[Settings]:
    """The stack's settings with a pipeline user limited to ``names``, as the consumer runs in production."""
    with settings_for_prefix(settings, names) as scoped:
        yield scoped


@pytest.fixture
def sink(scoped: Settings, names: IndexNames) -> Iterator[OpenSearchIndex]:
    with OpenSearchIndex(scoped, index_prefix=names.prefix) as s:
        yield s


def sources(admin: OpenSearch, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {doc_id: hit["_source"] for doc_id, hit in documents(admin, index, ids).items()}


def batch() -> list[Any]:
    """Events over two months, with every event type the mapping must accept."""
    december = T0 + dt.timedelta(days=2)
    return [
        envelope(make_event(), offset=1),
        envelope(make_page_view(), offset=2),
        envelope(make_search("punaiset kengät"), offset=3),
        envelope(make_page_view(occurred_at=december, session_id="s-2"), offset=4),
    ]


def test_templates_shape_the_indices(admin: OpenSearch, names: IndexNames, settings: Settings) -> None:
    month = names.events_index(T0)
    mapping = admin.indices.get_mapping(index=month)[month]["mappings"]
    assert mapping["dynamic"] == "strict"
    types = {name: spec["type"] for name, spec in mapping["properties"].items()}
    assert types["event_id"] == types["page_url"] == types["page_path"] == types["utm_source"] == "keyword"
    assert types["occurred_at"] == types["ingested_at"] == "date"
    assert types["price"] == types["revenue"] == "double"
    assert types["search_query"] == "text"
    assert mapping["properties"]["search_query"]["fields"]["keyword"]["type"] == "keyword"
    assert types["kafka_offset"] == "long" and types["schema_version"] == "short"

    sessions = admin.indices.get_mapping(index=names.sessions_alias)[names.sessions_index]["mappings"]
    assert sessions["dynamic"] == "strict"
    assert sessions["properties"]["version"]["type"] == "long"
    assert sessions["properties"]["converted"]["type"] == "boolean"
    assert sessions["properties"]["started_at"]["type"] == "date"

    aliases = admin.indices.get_alias(index=f"{names.prefix}-*")
    assert aliases[month]["aliases"] == {names.events_alias: {}}
    assert aliases[names.sessions_index]["aliases"] == {names.sessions_alias: {"is_write_index": True}}

    nodes = int(admin.cluster.health()["number_of_data_nodes"])
    index_settings = admin.indices.get_settings(index=month)[month]["settings"]["index"]
    assert int(index_settings["number_of_replicas"]) == replicas_for(nodes)
    assert int(index_settings["number_of_shards"]) == 1

    template = admin.indices.get_index_template(name=names.events_template)["index_templates"][0]["index_template"]
    assert template["index_patterns"] == [names.events_pattern]
    assert template["composed_of"] == [names.settings_component, names.events_component]


def test_ensure_templates_is_idempotent(admin: OpenSearch, names: IndexNames, settings: Settings) -> None:
    before = sorted(admin.indices.get_alias(index=f"{names.prefix}-*"))
    assert ensure_templates(settings, names.prefix, now=T0) == names
    assert sorted(admin.indices.get_alias(index=f"{names.prefix}-*")) == before


def test_the_refresh_interval_chosen_last_applies_to_existing_indices_and_new_ones(
    admin: OpenSearch, names: IndexNames, settings: Settings
) -> None:
    def intervals() -> dict[str, str]:
        found = admin.indices.get_settings(index=f"{names.prefix}-*", name="index.refresh_interval")
        return {index: body["settings"]["index"]["refresh_interval"] for index, body in found.items()}

    assert set(intervals().values()) == {DEFAULT_REFRESH_INTERVAL}
    ensure_templates(settings, names.prefix, now=T0, refresh_interval="7s")
    ensure_templates(settings, names.prefix, now=T0 + dt.timedelta(days=40), refresh_interval="7s")
    assert len(intervals()) == 3 and set(intervals().values()) == {"7s"}  # sessions and two months


def test_written_events_and_sessions_are_found_by_id(
    admin: OpenSearch, names: IndexNames, sink: OpenSearchIndex
) -> None:
    envelopes = batch()
    rows = [session_row("s-1", 3), session_row("s-2", 1, user_id="u-2")]
    sink.write(envelopes, rows)

    ids = [e.event.event_id for e in envelopes]
    found = sources(admin, names.events_alias, ids)
    assert found == {e.event.event_id: json.loads(encode_event_document(e)) for e in envelopes}
    assert found[ids[0]]["occurred_at"] == "2026-11-30T09:41:07.123Z"
    assert document_count(admin, names.events_index(T0)) == 3
    assert document_count(admin, names.events_alias) == 4

    by_path = admin.search(index=names.events_alias, body={"query": {"term": {"page_path": "/product/42"}}})
    assert by_path["hits"]["total"]["value"] == 2
    by_words = admin.search(index=names.events_alias, body={"query": {"match": {"search_query": "kengät"}}})
    assert [h["_id"] for h in by_words["hits"]["hits"]] == [ids[2]]

    sessions = sources(admin, names.sessions_alias, ["s-1", "s-2"])
    assert sessions == {r["session_id"]: json.loads(json.dumps(session_document(r))) for r in rows}
    assert sessions["s-1"]["version"] == 3 and sessions["s-1"]["revenue"] == 99.8
    assert (sink.stats.events, sink.stats.sessions) == (4, 2)


def seq_no(admin: OpenSearch, index: str, doc_id: str) -> int:
    """The document's sequence number: it grows with every write of the document."""
    return int(admin.get(index=index, id=doc_id)["_seq_no"])


def test_writing_the_same_batch_again_changes_nothing(
    admin: OpenSearch, names: IndexNames, sink: OpenSearchIndex
) -> None:
    envelopes, rows = batch(), [session_row("s-1", 1)]
    sink.write(envelopes, rows)
    first = sources(admin, names.events_alias, [e.event.event_id for e in envelopes])
    written = {
        e.event.event_id: seq_no(admin, names.events_index(e.event.occurred_at), e.event.event_id) for e in envelopes
    }
    session_seq = seq_no(admin, names.sessions_alias, "s-1")
    sink.write(envelopes, rows)
    sink.write(envelopes, rows)
    assert document_count(admin, names.events_alias) == len(envelopes)
    assert document_count(admin, names.sessions_alias) == 1
    assert sources(admin, names.events_alias, list(first)) == first
    # the same versions again are 409s: no document was written a second time
    assert {
        e.event.event_id: seq_no(admin, names.events_index(e.event.occurred_at), e.event.event_id) for e in envelopes
    } == written
    assert seq_no(admin, names.sessions_alias, "s-1") == session_seq
    assert (sink.stats.events, sink.stats.sessions, sink.stats.stale_sessions) == (len(envelopes), 1, 2)


def test_an_older_session_row_never_overwrites_a_newer_one(
    admin: OpenSearch, names: IndexNames, sink: OpenSearchIndex
) -> None:
    sink.write([], [session_row("s-1", 5, events=50)])
    sink.write([], [session_row("s-1", 4, events=40)])
    assert sources(admin, names.sessions_alias, ["s-1"])["s-1"]["events"] == 50
    assert sink.stats.stale_sessions == 1

    # newer rows win, and within one request the order of arrival does not matter either
    sink.write([], [session_row("s-1", 7, events=70), session_row("s-1", 6, events=60)])
    stored = sources(admin, names.sessions_alias, ["s-1"])["s-1"]
    assert (stored["version"], stored["events"]) == (7, 70)
    assert admin.get(index=names.sessions_alias, id="s-1")["_version"] == 7
    assert document_count(admin, names.sessions_alias) == 1


def test_a_closed_index_fails_the_write_naming_the_event(
    admin: OpenSearch, names: IndexNames, sink: OpenSearchIndex
) -> None:
    sink.write([envelope(make_event())], [])
    admin.indices.close(index=names.events_index(T0))
    lost = envelope(make_event())
    with pytest.raises(IndexingError) as caught:
        sink.write([lost], [])
    assert lost.event.event_id in str(caught.value)
    assert "index_closed_exception" in str(caught.value)


def test_a_session_violating_the_strict_mapping_fails_and_the_rest_is_indexed(
    admin: OpenSearch, names: IndexNames, sink: OpenSearchIndex
) -> None:
    good = envelope(make_event())
    with pytest.raises(IndexingError) as caught:
        sink.write([good], [session_row("s-ok", 1), session_row("s-bad", 1, new_metric=3)])
    message = str(caught.value)
    assert "session s-bad" in message and "strict_dynamic_mapping_exception" in message
    assert document_count(admin, names.events_alias) == 1
    assert list(sources(admin, names.sessions_alias, ["s-ok", "s-bad"])) == ["s-ok"]


def test_a_value_of_the_wrong_type_fails_naming_the_session(names: IndexNames, sink: OpenSearchIndex) -> None:
    with pytest.raises(IndexingError, match=r"session s-9 .*mapper_parsing_exception"):
        sink.write([], [session_row("s-9", 1, page_views="many")])


def test_the_sink_refuses_indices_without_our_templates(settings: Settings, admin: OpenSearch) -> None:
    with (
        private_prefix(admin) as bare,
        settings_for_prefix(settings, bare) as scoped,
        OpenSearchIndex(scoped, index_prefix=bare.prefix) as s,
    ):
        with pytest.raises(ConfigError, match="ensure_templates"):
            s.write([envelope(make_event())], [])
        with pytest.raises(ConfigError, match="does not exist"):
            s.write([], [session_row()])


def test_many_events_in_several_requests_all_arrive(admin: OpenSearch, names: IndexNames, scoped: Settings) -> None:
    envelopes = [
        envelope(
            make_page_view(occurred_at=T0 - dt.timedelta(seconds=i), page_url=f"https://shop.example.com/p/{i}"),
            offset=i,
        )
        for i in range(2_500)
    ]
    with OpenSearchIndex(scoped, index_prefix=names.prefix, max_docs=400, max_bytes=150_000) as s:
        s.write(envelopes, [session_row(f"s-{i}", 1) for i in range(300)])
        assert s.stats.requests >= 8
    assert document_count(admin, names.events_alias) == 2_500
    assert document_count(admin, names.sessions_alias) == 300
    assert T0.tzinfo is UTC
