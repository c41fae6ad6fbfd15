"""How fast does the OpenSearch sink index events, and which bulk request size is best?

Bulk-indexes N synthetic events (``Event`` instances built directly, no Kafka) through
``OpenSearchIndex.write`` in consumer-sized batches, once per request-size setting, and
prints documents per second for each. ``DEFAULT_MAX_DOCS`` / ``DEFAULT_MAX_BYTES`` in
``pipeline/sinks/opensearch/index.py`` come from this table.

Besides wall-clock throughput it reports CPU seconds per 1,000 documents on both sides
(this Python process, and the OpenSearch node from its own statistics), because on a
2-core machine shared with Kafka and PostgreSQL the CPU budget, not the wall clock of
one component, decides whether the whole consumer sustains its target rate.

Run against the local stack (``devstack up``); it works in indices of its own random
prefix and deletes them afterwards::

    .venv/bin/python -m benchmarks.bench_opensearch_index
    .venv/bin/python -m benchmarks.bench_opensearch_index --docs 200000 --chunks 500,2000,5000,10000 --mib 1,5,9
    .venv/bin/python -m benchmarks.bench_opensearch_index --shards 1,2 --concurrency 1,2 --chunks 2000 --mib ""
    .venv/bin/python -m benchmarks.bench_opensearch_index --refresh 1s,5s,30s --chunks 2000 --mib ""
    .venv/bin/python -m benchmarks.bench_opensearch_index --sessions --chunks 2000 --mib ""

Cases run round-robin, 5 times each by default, and the median run is printed: on a
machine shared with other work a single run says little.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.serializer import JSONSerializer

from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import Settings, find_local_outputs, load_settings
from pipeline.contract.event import Event
from pipeline.contract.names import IndexNames
from pipeline.sinks.batch import Envelope, SessionRow
from pipeline.sinks.opensearch.documents import bulk_body, bulk_items, event_document
from pipeline.sinks.opensearch.index import OpenSearchIndex
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL
from pipeline.sinks.opensearch.templates import ensure_templates
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.opensearch_prefix import private_names, private_prefix

MIB = 1024 * 1024
UTC = dt.UTC
TYPES = ("page_view", "page_view", "page_view", "page_view", "click", "click", "search", "add_to_cart", "purchase")


def synthetic_events(n: int, seed: int = 7) -> list[Envelope]:
    """``n`` valid events with a realistic mix of types and field sizes, spread over the last hours."""
    rng = random.Random(seed)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    envelopes = []
    for i in range(n):
        kind = TYPES[rng.randrange(len(TYPES))]
        product = f"p-{rng.randrange(5000)}"
        price = Decimal(rng.randrange(100, 50000)).scaleb(-2)
        path = rng.choice(("/", f"/product/{product}", f"/category/{rng.randrange(40)}", "/cart", "/search"))
        event = Event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            schema_version=1,
            event_type=kind,  # type: ignore[arg-type]
            occurred_at=now - dt.timedelta(milliseconds=rng.randrange(3_600_000)),
            user_id=f"u-{rng.randrange(200_000)}",
            session_id=f"s-{i // 8}",
            page_url=f"https://shop.example.com{path}?utm=x&i={rng.randrange(1000)}",
            referrer=rng.choice((None, "https://www.google.com/", "android-app://com.example")),
            utm_source=rng.choice((None, "google", "newsletter")),
            utm_medium=rng.choice((None, "cpc", "email")),
            utm_campaign=rng.choice((None, "black-friday-2026")),
            device_type=rng.choice(("desktop", "mobile", "tablet")),
            browser=rng.choice(("Chrome", "Firefox", "Safari", "Edge")),
            os=rng.choice(("Windows", "macOS", "Android", "iOS", "Linux")),
            country=rng.choice(("DE", "FR", "US", "GB", "NL", "FI")),
            element_id=f"btn-{rng.randrange(50)}" if kind == "click" else None,
            search_query=rng.choice(("red shoes", "winter jacket", "usb-c cable 2m")) if kind == "search" else None,
            product_id=product if kind in ("add_to_cart", "purchase") else None,
            price=price if kind in ("add_to_cart", "purchase") else None,
            order_id=f"o-{i}" if kind == "purchase" else None,
            revenue=price if kind == "purchase" else None,
        )
        envelopes.append(Envelope(event, i % 6, i, now))
    return envelopes


def synthetic_sessions(envelopes: Sequence[Envelope], version: int) -> list[SessionRow]:
    """One row per session in the batch, shaped like the PostgreSQL ``sessions`` row."""
    rows: dict[str, SessionRow] = {}
    for envelope in envelopes:
        e = envelope.event
        rows.setdefault(
            e.session_id,
            {
                "session_id": e.session_id,
                "user_id": e.user_id,
                "started_at": e.occurred_at,
                "ended_at": e.occurred_at,
                "duration_s": Decimal("12.345"),
                "events": 8,
                "page_views": 4,
                "unique_pages": 3,
                "clicks": 2,
                "searches": 1,
                "add_to_carts": 1,
                "purchases": 0,
                "revenue": Decimal("0.00"),
                "landing_page": "/",
                "exit_page": "/cart",
                "referrer": e.referrer,
                "utm_source": e.utm_source,
                "utm_medium": e.utm_medium,
                "utm_campaign": e.utm_campaign,
                "device_type": e.device_type,
                "browser": e.browser,
                "os": e.os,
                "country": e.country,
                "converted": False,
                "is_engaged": True,
                "is_bounce": False,
                "version": version,
                "updated_at": envelope.ingested_at,
            },
        )
    return list(rows.values())


def batches(items: Sequence[Envelope], size: int) -> Iterator[Sequence[Envelope]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def node_cpu_ms(client: OpenSearch) -> int:
    stats = client.nodes.stats(metric="process")
    return sum(int(node["process"]["cpu"]["total_in_millis"]) for node in stats["nodes"].values())


@dataclass(frozen=True)
class Case:
    label: str
    max_docs: int
    max_bytes: int
    shards: int = 1
    concurrency: int = 1
    refresh: str = DEFAULT_REFRESH_INTERVAL


@dataclass(frozen=True)
class Result:
    case: Case
    docs: int
    seconds: float
    client_cpu: float
    server_cpu: float
    requests: int

    def row(self) -> str:
        per_k = 1000 / self.docs
        return (
            f"{self.case.label:<32} {self.docs / self.seconds:>10,.0f} {self.requests:>9} "
            f"{self.client_cpu * per_k:>12.3f} {self.server_cpu * per_k:>12.3f}"
        )


def run_case(
    admin: OpenSearch, settings: Settings, case: Case, envelopes: Sequence[Envelope], batch: int, sessions: bool
) -> Result:
    with private_prefix(admin, private_names("b")) as names, settings_for_prefix(settings, names) as scoped:
        return _run_case(admin, scoped, names, case, envelopes, batch, sessions)


def _run_case(
    admin: OpenSearch,
    settings: Settings,
    names: IndexNames,
    case: Case,
    envelopes: Sequence[Envelope],
    batch: int,
    sessions: bool,
) -> Result:
    ensure_templates(settings, names.prefix, client=admin, event_shards=case.shards, refresh_interval=case.refresh)
    sink = OpenSearchIndex(
        client=opensearch_client(settings.opensearch, "app", timeout=120),
        index_prefix=names.prefix,
        max_docs=case.max_docs,
        max_bytes=case.max_bytes,
        concurrency=case.concurrency,
    )
    try:
        parts = list(batches(envelopes, batch))
        rows = [synthetic_sessions(part, 1) if sessions else [] for part in parts]
        sink.write(parts[0][:10], [])  # create the month's index outside the timing
        cpu0, server0, t0 = time.process_time(), node_cpu_ms(admin), time.perf_counter()
        for part, session_rows in zip(parts, rows, strict=True):
            sink.write(part, session_rows)
        seconds = time.perf_counter() - t0
        client_cpu, server_cpu = time.process_time() - cpu0, (node_cpu_ms(admin) - server0) / 1000
        admin.indices.refresh(index=names.events_alias)
        count = admin.count(index=names.events_alias)["count"]
        if count != len(envelopes):
            raise SystemExit(f"{case.label}: indexed {count} of {len(envelopes)} events")
        docs = len(envelopes) + sum(len(r) for r in rows)
        return Result(case, docs, seconds, client_cpu, server_cpu, sink.stats.requests)
    finally:
        sink.close()


def median(runs: Sequence[Result]) -> Result:
    """The run with the median throughput: one noisy run on a shared machine should not decide."""
    return sorted(runs, key=lambda r: r.docs / r.seconds)[len(runs) // 2]


def build_only(envelopes: Sequence[Envelope]) -> float:
    """Documents per second for building the NDJSON alone (no network): the client's ceiling."""
    names = IndexNames("bench")
    t0 = time.perf_counter()
    for part in batches(envelopes, 5000):
        bulk_body(bulk_items(part, [], names))
    return len(envelopes) / (time.perf_counter() - t0)


def build_with_stdlib_json(envelopes: Sequence[Envelope]) -> float:
    """The same NDJSON the way ``opensearchpy.helpers`` would build it: a dict per action and per
    document, serialised by the client's ``JSONSerializer`` (standard ``json``). For comparison."""
    names = IndexNames("bench")
    serializer = JSONSerializer()
    t0 = time.perf_counter()
    for part in batches(envelopes, 5000):
        lines = []
        for envelope in part:
            event = envelope.event
            lines.append(
                serializer.dumps({"index": {"_index": names.events_index(event.occurred_at), "_id": event.event_id}})
            )
            lines.append(serializer.dumps(event_document(envelope)))
        ("\n".join(lines) + "\n").encode()
    return len(envelopes) / (time.perf_counter() - t0)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=Path, default=None, help="stack-outputs file (default: the local stack's)")
    parser.add_argument("--docs", type=int, default=50_000, help="events per case")
    parser.add_argument("--batch", type=int, default=5_000, help="events per write() call (the consumer's batch)")
    parser.add_argument("--chunks", type=ints, default=[500, 2_000, 5_000, 10_000], help="docs per bulk request")
    parser.add_argument("--mib", type=floats, default=[1, 5, 9], help="MiB per bulk request (docs unlimited)")
    parser.add_argument("--shards", type=ints, default=[1], help="primary shards of the events index")
    parser.add_argument("--concurrency", type=ints, default=[1], help="parallel bulk requests per write")
    parser.add_argument("--sessions", action="store_true", help="also write one session row per 8 events")
    parser.add_argument(
        "--refresh",
        type=lambda t: t.split(","),
        default=[DEFAULT_REFRESH_INTERVAL],
        help="index.refresh_interval values to compare, e.g. 1s,5s,30s",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (round-robin); the median run is printed")
    parser.add_argument("--warmup", type=int, default=50_000, help="events indexed (and dropped) before measuring")
    args = parser.parse_args(argv)

    settings = load_settings(outputs_file=args.outputs or find_local_outputs())
    admin = opensearch_client(settings.opensearch, "admin", timeout=120)
    envelopes = synthetic_events(args.docs)
    print(
        f"{args.docs:,} events, {args.batch:,} per write(); building the NDJSON alone: "
        f"{build_only(envelopes):,.0f} docs/s with msgspec, {build_with_stdlib_json(envelopes):,.0f} docs/s with "
        "dicts and the client's json serializer"
    )

    cases = []
    for shards in args.shards:
        for concurrency in args.concurrency:
            for refresh in args.refresh:
                suffix = f" s{shards} c{concurrency} r{refresh}"
                cases += [Case(f"{n:,} docs{suffix}", n, 100 * MIB, shards, concurrency, refresh) for n in args.chunks]
                cases += [
                    Case(f"{m:g} MiB{suffix}", 1_000_000, int(m * MIB), shards, concurrency, refresh) for m in args.mib
                ]
    if args.warmup:  # the JVM's JIT and OpenSearch's caches: the first case would otherwise pay for them
        run_case(
            admin, settings, Case("warm-up", 2_000, 100 * MIB), envelopes[: args.warmup], args.batch, args.sessions
        )
    print(f"{'bulk request size':<32} {'docs/s':>10} {'requests':>9} {'client cpu-s':>12} {'server cpu-s':>12}")
    print(f"{'':<32} {'':>10} {'':>9} {'per 1k docs':>12} {'per 1k docs':>12}")
    # Round-robin over the cases, so that load from other processes on a shared machine
    # spreads over all of them instead of deciding which case looks best.
    runs: dict[Case, list[Result]] = {case: [] for case in cases}
    for _ in range(args.repeat):
        for case in cases:
            runs[case].append(run_case(admin, settings, case, envelopes, args.batch, args.sessions))
    for case in cases:
        print(median(runs[case]).row(), flush=True)


if __name__ == "__main__":
    main()
