"""The sink's decisions, against a scripted client: what is retried, what is success, what raises."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, RequestError, TransportError

from pipeline.config.secret import Secret
from pipeline.errors import ConfigError, IndexingError, ServiceError, SinkUnavailable
from pipeline.sinks.batch import SYSTEMIC_MIN_EVENTS
from pipeline.sinks.opensearch.documents import BulkItem, bulk_body, bulk_items
from pipeline.sinks.opensearch.index import (
    ItemResult,
    OpenSearchIndex,
    Outcome,
    RetryPolicy,
    classify,
    describe,
    read_response,
)
from pipeline.sinks.opensearch.mappings import MAPPING_VERSION
from pipeline.sinks.opensearch_client import connect_opensearch
from tests.support.events import envelope, make_event, session_row

Action = tuple[dict[str, Any], dict[str, Any]]
Handler = Callable[[list[Action]], dict[str, Any]]


def ok(status: int = 201) -> dict[str, Any]:
    return {"index": {"status": status}}


def err(status: int, kind: str, reason: str = "because", **extra: Any) -> dict[str, Any]:
    return {"index": {"status": status, "error": {"type": kind, "reason": reason, **extra}}}


def respond(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"errors": any("error" in i["index"] for i in items), "items": items}


class FakeIndices:
    def __init__(self, meta: dict[str, Any] | None) -> None:
        self.created: list[str] = []
        self.existing: set[str] = set()
        self.meta = meta

    def create(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(index)
        if index in self.existing:
            raise RequestError(
                400, "resource_already_exists_exception", {"error": {"type": "resource_already_exists_exception"}}
            )
        self.existing.add(index)
        return {"acknowledged": True}

    def get_mapping(self, index: str) -> dict[str, Any]:
        kind = "sessions" if "sessions" in index else "events"
        meta = (
            self.meta
            if self.meta is not None
            else {"owner": "clickstream-pipeline", "kind": kind, "mapping_version": MAPPING_VERSION}
        )
        return {index: {"mappings": {"_meta": meta}}}


class FakeClient:
    """Parses each bulk body and answers with ``handler(actions)``, recording every request."""

    def __init__(self, *handlers: Handler | BaseException, meta: dict[str, Any] | None = None) -> None:
        self.handlers = list(handlers)
        self.requests: list[list[Action]] = []
        self.indices = FakeIndices(meta)
        self.closed = False

    def bulk(self, body: bytes, filter_path: str, request_timeout: float, headers: dict[str, str]) -> dict[str, Any]:
        assert body.endswith(b"\n")
        lines = [json.loads(line) for line in body.splitlines()]
        actions = list(zip(lines[::2], lines[1::2], strict=True))
        self.requests.append(actions)
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        if isinstance(handler, BaseException):
            raise handler
        return handler(actions)

    def close(self) -> None:
        self.closed = True


def all_ok(actions: list[Action]) -> dict[str, Any]:
    return respond([ok() for _ in actions])


def each(rule: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    return lambda actions: respond([rule(meta["index"]) for meta, _ in actions])


def sink(client: FakeClient, **options: Any) -> tuple[OpenSearchIndex, list[float]]:
    sleeps: list[float] = []
    options.setdefault("retry", RetryPolicy(attempts=4, initial_backoff=0.1, max_backoff=0.3))
    return OpenSearchIndex(client=client, index_prefix="t-cs", sleep=sleeps.append, **options), sleeps  # type: ignore[arg-type]


def events(n: int) -> list[Any]:
    return [envelope(make_event()) for _ in range(n)]


# --- classify / describe / read_response ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "error", "outcome"),
    [
        ("event", 201, None, Outcome.DONE),
        ("event", 200, None, Outcome.DONE),
        ("session", 409, {"type": "version_conflict_engine_exception"}, Outcome.DONE),
        ("event", 409, {"type": "version_conflict_engine_exception"}, Outcome.DONE),
        ("session", 409, {"type": "something_else"}, Outcome.FAIL),
        ("event", 429, {"type": "es_rejected_execution_exception"}, Outcome.RETRY),
        ("session", 429, {"type": "circuit_breaking_exception"}, Outcome.RETRY),
        ("event", 500, {"type": "x"}, Outcome.RETRY),
        ("event", 503, {"type": "unavailable_shards_exception"}, Outcome.RETRY),
        ("event", 400, {"type": "x", "caused_by": {"type": "es_rejected_execution_exception"}}, Outcome.RETRY),
        ("event", 404, {"type": "index_not_found_exception"}, Outcome.MISSING_INDEX),
        ("session", 404, {"type": "index_not_found_exception"}, Outcome.FAIL),
        ("event", 400, {"type": "strict_dynamic_mapping_exception"}, Outcome.FAIL),
        ("event", 400, {"type": "mapper_parsing_exception"}, Outcome.REFUSED),
        ("event", 400, {"type": "illegal_argument_exception"}, Outcome.REFUSED),
        ("session", 400, {"type": "mapper_parsing_exception"}, Outcome.FAIL),
        ("event", 403, {"type": "cluster_block_exception"}, Outcome.RETRY),
        ("event", 429, {"type": "cluster_block_exception"}, Outcome.RETRY),
        ("event", 401, {"type": "security_exception"}, Outcome.FAIL),
        ("event", 400, {"type": "index_closed_exception"}, Outcome.FAIL),
        ("event", 403, {"type": "security_exception"}, Outcome.FAIL),
        ("event", 418, None, Outcome.FAIL),
        ("event", 0, None, Outcome.FAIL),
    ],
)
def test_classify(kind: Any, status: int, error: dict[str, Any] | None, outcome: Outcome) -> None:
    assert classify(kind, status, error) is outcome


def test_describe_names_the_document_index_and_error() -> None:
    item = BulkItem("event", "e-1", "t-cs-events-2026.11", b"")
    error = {"type": "mapper_parsing_exception", "reason": "failed to parse", "caused_by": {"reason": "bad date"}}
    text = describe(ItemResult(item, 400, error, Outcome.FAIL))
    assert text == "event e-1 in t-cs-events-2026.11: HTTP 400 mapper_parsing_exception: failed to parse (bad date)"


def test_read_response_returns_the_items_not_simply_accepted_in_order() -> None:
    items = [BulkItem("event", str(i), "x", b"") for i in range(4)]
    answer = respond([ok(), err(429, "es_rejected_execution_exception"), ok(200), err(400, "mapper_parsing_exception")])
    assert [(r.item.doc_id, r.status, r.outcome) for r in read_response(items, answer)] == [
        ("1", 429, Outcome.RETRY),
        ("3", 400, Outcome.REFUSED),
    ]
    assert read_response(items, respond([ok()] * 4)) == []


def test_read_response_refuses_a_mismatched_answer() -> None:
    items = [BulkItem("event", str(i), "x", b"") for i in range(3)]
    with pytest.raises(IndexingError, match="2 items to a bulk request of 3"):
        read_response(items, respond([ok(), err(400, "x")]))
    with pytest.raises(IndexingError):
        read_response(items, {"errors": False, "items": [ok()]})
    with pytest.raises(IndexingError):
        read_response(items, {"errors": False})


# --- write ---------------------------------------------------------------------------------------


def test_write_sends_every_event_and_session_once() -> None:
    client = FakeClient(all_ok)
    s, sleeps = sink(client)
    batch = events(3)
    s.write(batch, [session_row("s-1", 4)])
    (request,) = client.requests
    assert [meta["index"]["_id"] for meta, _ in request] == [e.event.event_id for e in batch] + ["s-1"]
    assert request[-1][0]["index"] == {
        "_index": "t-cs-sessions",
        "_id": "s-1",
        "version": 4,
        "version_type": "external",
    }
    assert (s.stats.events, s.stats.sessions, s.stats.requests) == (3, 1, 1)
    assert sleeps == []


def test_write_creates_each_monthly_index_once() -> None:
    client = FakeClient(all_ok)
    s, _ = sink(client)
    s.write(events(2), [])
    s.write(events(2), [])
    assert client.indices.created == ["t-cs-events-2026.11"]


def test_an_empty_write_sends_nothing() -> None:
    client = FakeClient(all_ok)
    s, _ = sink(client)
    s.write([], [])
    assert client.requests == []


def test_requests_are_cut_by_count_and_by_bytes() -> None:
    client = FakeClient(all_ok)
    s, _ = sink(client, max_docs=2)
    s.write(events(5), [])
    assert [len(r) for r in client.requests] == [2, 2, 1]
    client = FakeClient(all_ok)
    one = len(bulk_body(bulk_items(events(1), [], s.names)))
    s, _ = sink(client, max_bytes=3 * one + 10)
    s.write(events(7), [])
    assert [len(r) for r in client.requests] == [3, 3, 1]


def test_parallel_requests_give_the_same_result() -> None:
    client = FakeClient(all_ok)
    s, _ = sink(client, max_docs=2, concurrency=3)
    s.write(events(9), [])
    assert sorted(len(r) for r in client.requests) == [1, 2, 2, 2, 2]
    assert s.stats.events == 9
    s.close()
    assert client.closed


def test_a_rejected_item_is_retried_alone_with_backoff() -> None:
    batch = events(3)
    busy = batch[1].event.event_id
    first = each(lambda m: err(429, "es_rejected_execution_exception") if m["_id"] == busy else ok())
    client = FakeClient(first, all_ok)
    s, sleeps = sink(client)
    s.write(batch, [])
    assert [[m["index"]["_id"] for m, _ in r] for r in client.requests] == [[e.event.event_id for e in batch], [busy]]
    assert len(sleeps) == 1 and 0.05 <= sleeps[0] <= 0.1
    assert s.stats.retried_items == 1 and s.stats.events == 3


def test_a_stale_session_is_success_not_failure() -> None:
    client = FakeClient(each(lambda m: err(409, "version_conflict_engine_exception") if m["_id"] == "old" else ok()))
    s, sleeps = sink(client)
    s.write(events(1), [session_row("old", 1), session_row("new", 2)])
    assert len(client.requests) == 1 and sleeps == []
    assert (s.stats.sessions, s.stats.stale_sessions) == (1, 1)


def test_a_mapping_failure_raises_naming_the_document_and_is_not_retried() -> None:
    batch = events(3)
    bad = batch[2].event.event_id
    client = FakeClient(
        each(lambda m: err(400, "strict_dynamic_mapping_exception", "no [bogus]") if m["_id"] == bad else ok())
    )
    s, sleeps = sink(client)
    with pytest.raises(IndexingError) as caught:
        s.write(batch, [])
    assert f"event {bad} in t-cs-events-2026.11: HTTP 400 strict_dynamic_mapping_exception: no [bogus]" in str(
        caught.value
    )
    assert len(client.requests) == 1 and sleeps == []


def test_several_failures_are_counted_in_the_message() -> None:
    client = FakeClient(each(lambda m: err(400, "mapper_parsing_exception")))
    s, _ = sink(client)
    with pytest.raises(IndexingError, match=r"\(and 3 more\)"):
        s.write(events(4), [])


def test_a_failure_is_raised_even_when_other_items_need_a_retry() -> None:
    batch = events(2)
    rule = {batch[0].event.event_id: err(503, "x"), batch[1].event.event_id: err(400, "index_closed_exception")}
    client = FakeClient(each(lambda m: rule[m["_id"]]))
    s, _ = sink(client)
    with pytest.raises(IndexingError, match="index_closed_exception"):
        s.write(batch, [])


def test_persistent_rejection_ends_in_the_transient_error() -> None:
    client = FakeClient(each(lambda m: err(429, "es_rejected_execution_exception")))
    s, sleeps = sink(client)
    with pytest.raises(SinkUnavailable, match="still rejects 2 of 2 documents after 4 attempts"):
        s.write(events(2), [])
    assert len(client.requests) == 4 and len(sleeps) == 3
    for retry, slept in enumerate(sleeps, start=1):  # exponential, capped at 0.3, jittered down to half
        base = min(0.3, 0.1 * 2 ** (retry - 1))
        assert base / 2 <= slept <= base


def test_a_whole_request_503_is_retried() -> None:
    client = FakeClient(TransportError(503, "unavailable", {"error": {"type": "cluster_block_exception"}}), all_ok)
    s, sleeps = sink(client)
    s.write(events(2), [])
    assert len(client.requests) == 2 and len(sleeps) == 1 and s.stats.events == 2


def test_a_whole_request_400_raises_the_typed_error() -> None:
    client = FakeClient(
        RequestError(400, "illegal_argument_exception", {"error": {"type": "illegal_argument_exception"}})
    )
    s, _ = sink(client)
    with pytest.raises(IndexingError, match="HTTP 400 illegal_argument_exception"):
        s.write(events(2), [])


@pytest.mark.parametrize(
    "exc", [OSConnectionError("N/A", "refused", OSError()), ConnectionTimeout("TIMEOUT", "timed out", OSError())]
)
def test_connection_errors_and_timeouts_raise_the_transient_error_at_once(exc: Exception) -> None:
    client = FakeClient(exc)
    s, sleeps = sink(client)
    with pytest.raises(SinkUnavailable):
        s.write(events(1), [])
    assert len(client.requests) == 1 and sleeps == []


def test_a_vanished_monthly_index_is_created_again_and_retried() -> None:
    client = FakeClient(each(lambda m: err(404, "index_not_found_exception")), all_ok)
    s, _ = sink(client)
    s.write(events(2), [])
    assert client.indices.created == ["t-cs-events-2026.11", "t-cs-events-2026.11"]
    assert s.stats.events == 2


def test_an_index_not_shaped_by_our_template_is_refused() -> None:
    client = FakeClient(all_ok, meta={})
    s, _ = sink(client)
    with pytest.raises(ConfigError, match="not created from the events template"):
        s.write(events(1), [])
    assert client.requests == []


@pytest.mark.parametrize(("version", "accepted"), [(0, False), (1, True), (2, True), (3, False)])
def test_an_events_index_of_an_older_compatible_mapping_is_written_on_a_newer_or_unknown_one_refused(
    version: int, accepted: bool
) -> None:
    """Version 1 indexed a superset of version 2's event fields, so documents written now fit it."""
    client = FakeClient(all_ok, meta={"owner": "clickstream-pipeline", "kind": "events", "mapping_version": version})
    s, _ = sink(client)
    if accepted:
        s.write(events(1), [])
        assert len(client.requests) == 1
    else:
        with pytest.raises(ConfigError, match="not created from the events template"):
            s.write(events(1), [])
        assert client.requests == []


def test_a_real_client_on_a_closed_port_raises_the_transient_error() -> None:
    s = OpenSearchIndex(
        client=connect_opensearch(Secret("https://user:pw@127.0.0.1:9"), timeout=2), index_prefix="t-cs"
    )
    with pytest.raises(SinkUnavailable) as caught:
        s.write(events(1), [])
    assert isinstance(caught.value, ServiceError) and "pw" not in str(caught.value)


def test_the_sink_needs_settings_or_a_client() -> None:
    with pytest.raises(ValueError):
        OpenSearchIndex()


# --- index_events: refusals are the document's fault or the index's ------------------------------


def test_index_events_returns_the_documents_refused_for_their_content_with_opensearch_words() -> None:
    batch = events(4)
    bad = batch[1].event.event_id
    reason = "failed to parse field [price] of type [double] in document with id 'x'"
    client = FakeClient(each(lambda m: err(400, "mapper_parsing_exception", reason) if m["_id"] == bad else ok()))
    s, sleeps = sink(client)
    (refusal,) = s.index_events(batch, version=17)
    assert refusal.envelope is batch[1] and refusal.reason.value == "refused_by_opensearch"
    assert refusal.field == "price" and "mapper_parsing_exception" in refusal.detail and bad in refusal.detail
    assert {m["index"]["version"] for m, _ in client.requests[0]} == {17}
    assert {m["index"]["version_type"] for m, _ in client.requests[0]} == {"external"}
    assert len(client.requests) == 1 and sleeps == [] and s.stats.refused_events == 1


def test_every_event_refused_with_the_same_error_is_the_index_s_fault_not_the_events() -> None:
    client = FakeClient(each(lambda m: err(400, "mapper_parsing_exception", "failed to parse")))
    s, _ = sink(client)
    with pytest.raises(IndexingError, match=f"refused all {SYSTEMIC_MIN_EVENTS} events of a batch with the same"):
        s.index_events(events(SYSTEMIC_MIN_EVENTS), version=1)


def test_a_few_events_refused_alike_are_the_events_fault() -> None:
    client = FakeClient(each(lambda m: err(400, "mapper_parsing_exception", "failed to parse")))
    s, _ = sink(client)
    assert len(s.index_events(events(SYSTEMIC_MIN_EVENTS - 1), version=1)) == SYSTEMIC_MIN_EVENTS - 1


def test_many_events_refused_for_different_reasons_are_the_events_fault() -> None:
    batch = events(SYSTEMIC_MIN_EVENTS)
    first = batch[0].event.event_id
    client = FakeClient(
        each(lambda m: err(400, "illegal_argument_exception" if m["_id"] == first else "mapper_parsing_exception"))
    )
    s, _ = sink(client)
    assert len(s.index_events(batch, version=1)) == SYSTEMIC_MIN_EVENTS


def test_an_older_or_equal_version_of_an_event_is_done_not_refused() -> None:
    client = FakeClient(each(lambda m: err(409, "version_conflict_engine_exception")))
    s, _ = sink(client)
    assert s.index_events(events(2), version=3) == []


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (401, "security_exception", ServiceError),
        (403, "security_exception", ServiceError),
        (400, "index_closed_exception", IndexingError),
        (400, "strict_dynamic_mapping_exception", IndexingError),
    ],
)
def test_systemic_item_errors_stop_without_refusing_anything(status: int, kind: str, error: type[Exception]) -> None:
    batch = events(3)
    bad = batch[0].event.event_id
    client = FakeClient(each(lambda m: err(status, kind) if m["_id"] == bad else ok()))
    s, _ = sink(client)
    with pytest.raises(error) as caught:
        s.index_events(batch, version=1)
    assert type(caught.value) is error and kind in str(caught.value)


def test_a_read_only_index_is_waited_for_not_refused() -> None:
    blocked = err(403, "cluster_block_exception", "index [x] blocked by: [FORBIDDEN/8/index write (api)]")
    client = FakeClient(each(lambda m: blocked), all_ok)
    s, sleeps = sink(client)
    assert s.index_events(events(2), version=1) == []
    assert len(client.requests) == 2 and len(sleeps) == 1


def test_a_refused_user_on_the_whole_request_is_a_service_error() -> None:
    client = FakeClient(TransportError(401, "security_exception", {"error": {"type": "security_exception"}}))
    s, _ = sink(client)
    with pytest.raises(ServiceError) as caught:
        s.index_events(events(1), version=1)
    assert not isinstance(caught.value, SinkUnavailable) and "HTTP 401" in str(caught.value)


def test_a_refused_session_document_is_fatal() -> None:
    client = FakeClient(each(lambda m: err(400, "mapper_parsing_exception")))
    s, _ = sink(client)
    with pytest.raises(IndexingError, match="session s-1"):
        s.index_sessions([session_row("s-1", 2)])
