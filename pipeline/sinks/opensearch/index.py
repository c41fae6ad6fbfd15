"""The OpenSearch sink: bulk-index a batch's new events and the session rows PostgreSQL returned.

Why ``client.bulk`` with our own body rather than ``opensearchpy.helpers``: the helpers
retry only HTTP 429 items, cannot tell a version conflict (success here) from a real
conflict, and serialise with the standard ``json`` module. Here the body is built by the
pure functions in ``documents.py``, and every item of every response is looked at
(:func:`classify`):

* 2xx, and 409 ``version_conflict_engine_exception`` (every write carries an external
  version, and the stored document already has this version or a newer one: a repeat of
  a write that landed, or a later writer's) -> done;
* 429, 5xx, ``es_rejected_execution_exception``, ``cluster_block_exception`` (a
  read-only index, e.g. the disk flood-stage watermark) and an event index that vanished
  (created again first) -> retried with exponential backoff; still failing after the
  last attempt -> :class:`SinkUnavailable`, transient: the consumer holds its partitions
  and retries the whole batch later, which is safe because every write is versioned;
* an event document OpenSearch cannot take (HTTP 400 ``mapper_parsing_exception``,
  ``illegal_argument_exception`` and the like: the document's own fault) -> a
  :class:`~pipeline.sinks.batch.Refusal` with OpenSearch's words, which the writer
  dead-letters, unless every event of the write was refused with the same error: that is
  the index's fault, not the events', and raises :class:`IndexingError`;
* anything else (authentication or authorisation refused, a closed index, a mapping
  that does not fit our documents, a refused session document) -> :class:`IndexingError`
  (or :class:`ServiceError` for a refused user) naming the document: the consumer stops
  with one line instead of dead-lettering a stream that is not at fault.

Connection errors and timeouts raise :class:`SinkUnavailable` at once: the consumer,
not this class, decides how long to wait for a service that is down.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from pipeline.config.settings import Settings
from pipeline.contract.names import DEFAULT_INDEX_PREFIX, IndexNames
from pipeline.errors import IndexingError, PipelineError, ServiceError, SinkUnavailable
from pipeline.events.decode import Reason
from pipeline.sinks.batch import Envelope, Refusal, SessionRow, refused_alike
from pipeline.sinks.opensearch.documents import (
    BulkItem,
    Kind,
    bulk_body,
    bulk_items,
    chunks,
    event_item,
    session_item,
)
from pipeline.sinks.opensearch.failures import error_type, service_error
from pipeline.sinks.opensearch.templates import check_index, create_index
from pipeline.sinks.opensearch_client import opensearch_client

DEFAULT_MAX_DOCS: Final = 10_000
"""Actions per bulk request; with :data:`DEFAULT_MAX_BYTES` this means "one request per
consumer batch" (5,000 events + their sessions is ~4 MiB). Chosen by measurement
(figures in docs/decisions.md): ``benchmarks/bench_opensearch_index.py`` finds throughput
and OpenSearch CPU per document flat within noise from 500 to 10,000 documents per
request (OpenSearch's per-document CPU, not per-request overhead, is the limit), and in
the whole consumer one request per batch beat 2,000-document requests: every request
costs a translog fsync and a round trip the consumer waits for."""
DEFAULT_MAX_BYTES: Final = 5 * 1024 * 1024
"""Bytes per bulk request: a cap for unusually large documents (long URLs and queries), half
the ~10 MiB beyond which bulk requests stop paying off and start straining the heap."""
BULK_FILTER_PATH: Final = "errors,items.*.status,items.*.error"
"""Ask only for what :func:`classify` reads: a bulk response shrinks to a fraction of its
size (see docs/decisions.md), and parsing it is on the consumer's hot path. ``status``
keeps one entry per item, in request order."""
REASON_MAX: Final = 300


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"
    MISSING_INDEX = "missing_index"
    REFUSED = "refused"
    """The event document itself cannot be indexed: dead-letter the event."""
    FAIL = "fail"
    """The index or the user is at fault: stop, dead-letter nothing."""


DOCUMENT_ERRORS: Final = frozenset(
    {
        "mapper_parsing_exception",
        "document_parsing_exception",
        "illegal_argument_exception",
        "x_content_parse_exception",
        "json_parse_exception",
        "parse_exception",
        "number_format_exception",
    }
)
"""Error types by which OpenSearch refuses one document for its content (HTTP 400)."""
_FIELD_IN_REASON: Final = re.compile(r"field \[([^\]]+)\]")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently retryable items are re-sent within one ``write``.

    With the defaults the last attempt starts ~10 s after the first: long enough to ride
    out a merge storm or a full write queue, short enough that the consumer keeps polling
    Kafka (``max.poll.interval.ms``) and can decide what to do with a longer outage.
    """

    attempts: int = 6
    initial_backoff: float = 0.25
    max_backoff: float = 4.0

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): exponential, capped, with jitter so
        that several consumer processes do not hammer the cluster in step."""
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return base * random.uniform(0.5, 1.0)


@dataclass
class IndexStats:
    """Counters since the sink was created; cheap, for logs and benchmarks."""

    requests: int = 0
    events: int = 0
    sessions: int = 0
    stale_sessions: int = 0
    retried_items: int = 0
    refused_events: int = 0
    bytes_sent: int = 0


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item's answer from a bulk response, with its outcome."""

    item: BulkItem
    status: int
    error: Mapping[str, Any] | None
    outcome: Outcome


def _is_rejected_execution(error: Mapping[str, Any] | None) -> bool:
    while isinstance(error, Mapping):
        if error.get("type") == "es_rejected_execution_exception":
            return True
        error = error.get("caused_by")
    return False


def _has_type(error: Mapping[str, Any] | None, wanted: str) -> bool:
    while isinstance(error, Mapping):
        if error.get("type") == wanted:
            return True
        error = error.get("caused_by")
    return False


def classify(kind: Kind, status: int, error: Mapping[str, Any] | None) -> Outcome:
    """What to do with one bulk item, from its status and error (pure)."""
    if 200 <= status < 300:
        return Outcome.DONE
    kind_of_error = error.get("type") if error else None
    if status == 409 and kind_of_error == "version_conflict_engine_exception":
        return Outcome.DONE
    if status == 429 or status >= 500 or _is_rejected_execution(error) or _has_type(error, "cluster_block_exception"):
        return Outcome.RETRY
    if status == 404 and kind == "event" and kind_of_error == "index_not_found_exception":
        return Outcome.MISSING_INDEX
    if status == 400 and kind == "event" and kind_of_error in DOCUMENT_ERRORS:
        return Outcome.REFUSED
    return Outcome.FAIL


def describe(result: ItemResult) -> str:
    """One line naming the document and what OpenSearch said about it."""
    error = result.error or {}
    reason = str(error.get("reason", ""))[:REASON_MAX]
    caused_by = error.get("caused_by")
    if isinstance(caused_by, Mapping) and caused_by.get("reason"):
        reason = f"{reason} ({str(caused_by['reason'])[:REASON_MAX]})"
    item = result.item
    return f"{item.kind} {item.doc_id} in {item.target}: HTTP {result.status} {error.get('type', '')}: {reason}".rstrip(
        ": "
    )


def read_response(items: Sequence[BulkItem], response: Mapping[str, Any]) -> list[ItemResult]:
    """The items OpenSearch did not simply accept (any status outside 2xx), classified.

    Answers keep request order, so the n-th answer is the n-th item. Successes are not
    materialised: on the usual all-2xx response this returns ``[]`` after one length check,
    which keeps the hot path at a fraction of a microsecond per document.
    """
    answers = response.get("items")
    if not isinstance(answers, list) or len(answers) != len(items):
        got = len(answers) if isinstance(answers, list) else 0
        raise IndexingError(f"OpenSearch answered {got} items to a bulk request of {len(items)}")
    if not response.get("errors"):
        return []
    results = []
    for item, answer in zip(items, answers, strict=True):
        (body,) = answer.values()
        status = int(body.get("status", 0))
        if 200 <= status < 300:
            continue
        error = body.get("error")
        results.append(ItemResult(item, status, error, classify(item.kind, status, error)))
    return results


class OpenSearchIndex:
    """Writes events and session rows to OpenSearch; see the module docstring for the rules.

    One instance per consumer process; not safe for concurrent ``write`` calls (the
    consumer writes one batch at a time). ``concurrency`` > 1 sends the requests of one
    write in parallel, which helps only when OpenSearch has idle cores to spare.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: OpenSearch | None = None,
        index_prefix: str = DEFAULT_INDEX_PREFIX,
        max_docs: int = DEFAULT_MAX_DOCS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 1,
        request_timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Connect with the application URI of ``settings``, or use ``client`` (tests, benchmarks)."""
        if max_docs < 1 or max_bytes < 1 or concurrency < 1 or retry.attempts < 1:
            raise ValueError("max_docs, max_bytes, concurrency and retry.attempts must be positive")
        if client is None:
            if settings is None:
                raise ValueError("OpenSearchIndex needs settings or a client")
            client = opensearch_client(settings.opensearch, "app")
        self.client = client
        self.names = IndexNames(index_prefix)
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        self.retry = retry
        self.request_timeout = request_timeout
        self.stats = IndexStats()
        self._sleep = sleep
        self._ready: set[str] = set()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="opensearch-bulk") if concurrency > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> OpenSearchIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- public -----------------------------------------------------------------------------

    def index_events(self, envelopes: Sequence[Envelope], version: int) -> list[Refusal]:
        """Index these events' documents with external ``version``; return the ones refused for good.

        Only events whose rows the caller has just inserted belong here, each once (see
        ``pipeline.sinks.writer``). Raises :class:`IndexingError` / :class:`ServiceError`
        when the index or the user, not the documents, is at fault (every event refused
        with the same error counts as that), :class:`SinkUnavailable` when OpenSearch
        cannot be reached or keeps rejecting work after the retries.
        """
        by_id = {e.event.event_id: e for e in envelopes}
        refused = self._index([event_item(e, self.names, version) for e in envelopes])
        refusals = [
            Refusal(by_id[r.item.doc_id], Reason.REFUSED_BY_OPENSEARCH, _field_of(r), describe(r), _error_type(r))
            for r in refused
        ]
        if refused_alike(refusals, len(envelopes)):
            raise IndexingError(
                f"OpenSearch refused all {len(refusals)} events of a batch with the same error "
                f"({refusals[0].detail}); that points at the index, not the messages: nothing was dead-lettered"
            )
        self.stats.refused_events += len(refusals)
        return refusals

    def index_sessions(self, sessions: Sequence[SessionRow]) -> None:
        """Index session rows (external version = the row's ``version``); every refusal is fatal."""
        refused = self._index([session_item(row, self.names) for row in sessions])
        if refused:
            raise _failure(refused)

    def write(self, envelopes: Sequence[Envelope], sessions: Sequence[SessionRow], *, version: int = 1) -> None:
        """Index events (document ``version``) and sessions in one go; any refusal raises :class:`IndexingError`.

        For benchmarks and tests of the sink on its own; the consumer goes through
        ``pipeline.sinks.writer``. Safe to call again with the same batch.
        """
        refused = self._index(bulk_items(envelopes, sessions, self.names, version))
        if refused:
            raise _failure(refused)

    def _index(self, items: Sequence[BulkItem]) -> list[ItemResult]:
        """Send ``items`` until every one is done or refused (returned); retry the retryable ones."""
        if not items:
            return []
        pending: Sequence[BulkItem] = items
        refused: list[ItemResult] = []
        for attempt in range(1, self.retry.attempts + 1):
            self._prepare({item.target: item.kind for item in pending})
            retry, failed = self._send_all(pending)
            if any(r.outcome is Outcome.FAIL for r in failed):
                raise _failure([r for r in failed if r.outcome is Outcome.FAIL])
            refused.extend(failed)
            if not retry:
                return refused
            pending = [result.item for result in retry]
            self.stats.retried_items += len(pending)
            if attempt < self.retry.attempts:
                self._sleep(self.retry.backoff(attempt))
        raise SinkUnavailable(
            f"OpenSearch still rejects {len(pending)} of {len(items)} documents after "
            f"{self.retry.attempts} attempts, e.g. {describe(retry[0])}"
        )

    # --- internals ----------------------------------------------------------------------------

    def _prepare(self, indices: Mapping[str, Kind]) -> None:
        """Make sure every target index exists and was shaped by our template (once per index)."""
        for index, kind in indices.items():
            if index in self._ready:
                continue
            if kind == "event":
                create_index(self.client, index)
                check_index(self.client, index, "events")
            else:
                check_index(self.client, index, "sessions")
            self._ready.add(index)

    def _send_all(self, items: Sequence[BulkItem]) -> tuple[list[ItemResult], list[ItemResult]]:
        """Send ``items`` in chunks; return (retryable, refused or failed) results."""
        parts = list(chunks(items, max_docs=self.max_docs, max_bytes=self.max_bytes))
        self.stats.requests += len(parts)
        self.stats.bytes_sent += sum(len(item.payload) for item in items)
        if self._pool is None or len(parts) == 1:
            answers = [self._send(part) for part in parts]
        else:
            answers = list(self._pool.map(self._send, parts))
        retry: list[ItemResult] = []
        failed: list[ItemResult] = []
        events = sum(1 for item in items if item.kind == "event")
        sessions = len(items) - events
        for results in answers:
            for result in results:
                if result.item.kind == "event":
                    events -= 1
                else:
                    sessions -= 1
                if result.outcome is Outcome.DONE:
                    self.stats.stale_sessions += result.item.kind == "session"  # a 409: already as new
                elif result.outcome in (Outcome.FAIL, Outcome.REFUSED):
                    failed.append(result)
                else:
                    if result.outcome is Outcome.MISSING_INDEX:
                        self._ready.discard(result.item.target)
                    retry.append(result)
        self.stats.events += events
        self.stats.sessions += sessions
        return retry, failed

    def _send(self, part: Sequence[BulkItem]) -> list[ItemResult]:
        """One bulk request. A whole-request 429/5xx turns every item into a retry."""
        body = bulk_body(part)
        try:
            response = self.client.bulk(
                body=body,
                filter_path=BULK_FILTER_PATH,
                request_timeout=self.request_timeout,
                headers={"content-type": "application/x-ndjson"},
            )
        except OSConnectionError as exc:
            raise service_error(exc, f"sending a bulk request of {len(part)} documents") from None
        except TransportError as exc:
            status = exc.status_code
            if isinstance(status, int) and (status == 429 or status >= 500):
                error = exc.info.get("error") if isinstance(exc.info, dict) else None
                return [
                    ItemResult(item, status, error if isinstance(error, dict) else None, Outcome.RETRY) for item in part
                ]
            kind = error_type(exc.info) or exc.error
            if status in (401, 403):
                raise ServiceError(
                    f"OpenSearch refused the pipeline's user a bulk request: HTTP {status} {kind}"
                ) from None
            raise IndexingError(
                f"OpenSearch refused a bulk request of {len(part)} documents "
                f"(first: {part[0].kind} {part[0].doc_id}): HTTP {status} {kind}"
            ) from None
        return read_response(part, response)


def _error_type(result: ItemResult) -> str:
    error = result.error or {}
    return str(error.get("type", f"HTTP {result.status}"))


def _field_of(result: ItemResult) -> str | None:
    """The field OpenSearch's reason names (``failed to parse field [price] ...``), if any."""
    found = _FIELD_IN_REASON.search(str((result.error or {}).get("reason", "")))
    return found.group(1) if found else None


def _failure(results: Sequence[ItemResult]) -> PipelineError:
    """The error that stops the consumer: a refused user is the service's answer (exit 3), the rest exit 5."""
    first = describe(results[0])
    more = f" (and {len(results) - 1} more)" if len(results) > 1 else ""
    if results[0].status in (401, 403) and not _has_type(results[0].error, "cluster_block_exception"):
        return ServiceError(f"OpenSearch refused the pipeline's user: {first}{more}")
    return IndexingError(f"OpenSearch rejected {first}{more}")
