"""What does a replayed batch cost OpenSearch: re-index, create-only, versioned, or nothing?

When a batch is read again (a restart, a rebalance, a whole-topic replay), every one of
its events is already indexed. The sink used to re-send them with ``op_type=index``, which
rewrites each document. The alternatives measured here, on the same already-indexed
documents, in consumer-sized bulk requests:

* ``index``: the old behaviour, every document rewritten;
* ``create``: ``op_type=create``, each item answered 409 "document already exists";
* ``index, external version``: what the sink sends a new event with; the same version
  again is a 409 "version conflict" and writes nothing;
* nothing: what the consumer does now, since only events PostgreSQL has just inserted are
  indexed and a replay inserts none.

Prints wall seconds and OpenSearch CPU-seconds per 1,000 replayed documents (median of
``--repeat`` round-robin runs)::

    .venv/bin/python -m benchmarks.bench_opensearch_replay --docs 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from benchmarks.bench_opensearch_index import batches, node_cpu_ms, synthetic_events
from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import find_local_outputs, load_settings
from pipeline.contract.names import IndexNames
from pipeline.sinks.batch import Envelope
from pipeline.sinks.opensearch.documents import encode_event_document, index_action
from pipeline.sinks.opensearch.index import OpenSearchIndex
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.opensearch_prefix import private_names, private_prefix

VERSION = 7
ENCODER = msgspec.json.Encoder()


def body(part: Sequence[Envelope], names: IndexNames, mode: str) -> bytes:
    lines = []
    for envelope in part:
        index, doc_id = names.events_index(envelope.event.occurred_at), envelope.event.event_id
        if mode == "index":
            action = ENCODER.encode({"index": {"_index": index, "_id": doc_id}})
        elif mode == "create":
            action = ENCODER.encode({"create": {"_index": index, "_id": doc_id}})
        else:
            action = index_action(index, doc_id, version=VERSION)
        lines += [action, b"\n", encode_event_document(envelope), b"\n"]
    return b"".join(lines)


def replay(sink: OpenSearchIndex, names: IndexNames, envelopes: Sequence[Envelope], mode: str) -> None:
    if mode == "nothing":
        return
    for part in batches(envelopes, 5000):
        answer = sink.client.bulk(
            body=body(part, names, mode),
            filter_path="errors,items.*.status",
            headers={"content-type": "application/x-ndjson"},
            request_timeout=120,
        )
        statuses = {item.popitem()[1]["status"] for item in answer["items"]}
        expected = {"index": {200}, "create": {409}, "versioned": {409}}[mode]
        if statuses != expected:
            raise SystemExit(f"{mode}: unexpected statuses {statuses}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--outputs", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = load_settings(outputs_file=args.outputs or find_local_outputs())
    admin = opensearch_client(settings.opensearch, "admin", timeout=120)
    envelopes = synthetic_events(args.docs)
    modes = ["index", "create", "versioned", "nothing"]
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    with (
        private_prefix(admin, private_names("b"), templates=settings) as names,
        settings_for_prefix(settings, names) as scoped,
        OpenSearchIndex(
            client=opensearch_client(scoped.opensearch, "app", timeout=120), index_prefix=names.prefix
        ) as sink,
    ):
        for part in batches(envelopes, 5000):
            sink.write(part, [], version=VERSION)
        admin.indices.refresh(index=names.events_alias)
        measure: Callable[[str], tuple[float, float]]

        def measure(mode: str) -> tuple[float, float]:
            cpu0, t0 = node_cpu_ms(admin), time.perf_counter()
            replay(sink, names, envelopes, mode)
            return time.perf_counter() - t0, (node_cpu_ms(admin) - cpu0) / 1000

        for _ in range(args.repeat):
            for mode in ("create", "versioned", "nothing", "index"):  # index last: it rewrites
                results[mode].append(measure(mode))
    per_k = 1000 / args.docs
    print(f"replaying {args.docs:,} already indexed events, median of {args.repeat} round-robin runs")
    print(f"{'mode':<28} {'wall s per 1k':>14} {'OpenSearch cpu-s per 1k':>24}")
    for mode in modes:
        wall = statistics.median(w for w, _ in results[mode]) * per_k
        cpu = statistics.median(c for _, c in results[mode]) * per_k
        label = {"versioned": "index, external version", "nothing": "nothing (the consumer now)"}.get(mode, mode)
        print(f"{label:<28} {wall:>14.4f} {cpu:>24.4f}")


if __name__ == "__main__":
    main()
