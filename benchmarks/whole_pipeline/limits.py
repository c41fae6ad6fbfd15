"""The ceilings: how fast each part of the path can go on this machine with no pipeline around it.

All four read the same messages (the backlog in the benchmark's topic), so the pipeline's
drain rate can be put against them directly:

* Kafka: the raw consume rate of the topic, with the consumer certificate and the
  consumer's own fetch settings, ``consume(num_messages=...)`` in a loop that only counts.
* decode: ``EventDecoder.decode`` alone over the raw values (one ``now`` per chunk, like
  the consumer's per-batch ``now``).
* PostgreSQL: binary COPY (the fastest bulk path psycopg has) of the decoded events into
  a table created ``LIKE events INCLUDING ALL`` (same columns, generated ``page_path``,
  checks, primary key and indexes), one COPY and commit per chunk. The rows are built
  outside the clock; COPY's own encoding (in psycopg's C code) is inside it.
* OpenSearch: the sink's pure builders (``bulk_items``/``chunks``/``bulk_body``) and
  ``client.bulk`` with the sink's request size, sequentially like the sink, into a
  scratch prefix with the real templates (same mapping, shards, replicas and 5 s
  refresh). Building the bodies is timed separately from the requests.

The Kafka pass reads and counts only, so that nothing else slows the fetch loop; the other
limits stream the topic a second and third time (admin certificate, no group) chunk by
chunk, so memory stays bounded at any ``--events``. Each limit runs alone, so they do not
compete with each other for the two cores.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from opensearchpy import OpenSearch
from psycopg import sql

from benchmarks.whole_pipeline.records import DecodeLimit, KafkaLimit, OpenSearchLimit, PostgresLimit
from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.events.decode import EventDecoder, InvalidEvent
from pipeline.kafka.consumer import CONSUMER_DEFAULTS
from pipeline.sinks.batch import Envelope
from pipeline.sinks.opensearch.documents import bulk_body, bulk_items, chunks
from pipeline.sinks.opensearch.index import BULK_FILTER_PATH, DEFAULT_MAX_BYTES, DEFAULT_MAX_DOCS
from pipeline.sinks.opensearch.templates import create_index
from pipeline.sinks.opensearch_client import opensearch_client
from pipeline.sinks.postgres.store import COLUMNS
from tests.support.kafka_offsets import position, watermarks
from tests.support.opensearch_prefix import private_prefix

UTC = dt.UTC
LIMIT_TABLE = "bench_copy_limit"


def kafka_consume_limit(
    settings: Settings, topic: str, group: str, *, batch: int = 5_000, timeout_s: float = 600.0
) -> KafkaLimit:
    """Raw consume rate: the consumer's certificate and fetch settings, counting messages only.

    Partitions are assigned (not subscribed) from the beginning, so no group join or commit
    is timed; ``group.id`` is set only because librdkafka requires one. The clock starts at
    the first ``consume`` call (connections, TLS handshakes and the first fetch included).
    """
    config = {
        **settings.kafka.client_config("consumer"),
        **CONSUMER_DEFAULTS,
        "group.id": group,
        "enable.partition.eof": False,
    }
    consumer = Consumer(config)
    try:
        ends = watermarks(consumer, topic)
        expected = sum(high - low for low, high in ends.values())
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        count = 0
        consume = consumer.consume
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        while count < expected:
            for msg in consume(num_messages=batch, timeout=0.5):
                if msg.error() is None:
                    count += 1
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw Kafka read: {count} of {expected} messages in {timeout_s:.0f} s")
        seconds = time.perf_counter() - t0
        return KafkaLimit.timed(count, seconds, batch=batch, certificate="consumer")
    finally:
        consumer.close()


def read_chunks(settings: Settings, topic: str, chunk: int) -> Iterator[list[tuple[int, int, bytes]]]:
    """The whole topic as (partition, offset, value) lists of up to ``chunk``, read with the admin certificate."""
    consumer = Consumer(
        {
            **settings.kafka.client_config("admin"),
            "group.id": "pipeline-bench-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "max.partition.fetch.bytes": 4_194_304,
        }
    )
    try:
        ends = watermarks(consumer, topic)
        remaining = {p: high for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in remaining])
        out: list[tuple[int, int, bytes]] = []
        while remaining:
            for msg in consumer.consume(num_messages=5_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                p, o = position(msg)
                out.append((p, o, msg.value() or b""))
                if p in remaining and o + 1 >= remaining[p]:
                    del remaining[p]
                if len(out) >= chunk:
                    yield out
                    out = []
        if out:
            yield out
    finally:
        consumer.close()


def _decode(decoder: EventDecoder, chunk: list[tuple[int, int, bytes]]) -> tuple[list[Envelope], float, int]:
    """Decode a chunk; returns (envelopes, seconds spent in decode alone, invalid count)."""
    now = dt.datetime.now(UTC)
    decode = decoder.decode
    events: list[Any] = []
    invalid = 0
    t0 = time.perf_counter()
    for _p, _o, raw in chunk:
        try:
            events.append(decode(raw, now))
        except InvalidEvent:
            events.append(None)
            invalid += 1
    seconds = time.perf_counter() - t0
    envelopes = [Envelope(e, p, o, now) for (p, o, _), e in zip(chunk, events, strict=True) if e is not None]
    return envelopes, seconds, invalid


def decode_and_postgres_limits(
    settings: Settings, topic: str, *, chunk: int = 50_000
) -> tuple[DecodeLimit, PostgresLimit]:
    """Decode rate, then binary COPY rate of the same events into a ``LIKE events`` table.

    The table is created with the admin role in the run's database and dropped at
    the end (also on failure), followed by a CHECKPOINT so that the WAL it wrote is not
    flushed in the middle of the next measurement.
    """
    decoder = EventDecoder()
    decoded = invalid = nbytes = 0
    decode_s = copy_s = 0.0
    copied = copies = 0
    table = sql.Identifier(LIMIT_TABLE)
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    event_id = COLUMNS.index("event_id")
    astuple = msgspec.structs.astuple
    with psycopg.connect(settings.postgres.conninfo("admin"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=table))
        conn.execute(sql.SQL("CREATE TABLE {t} (LIKE events INCLUDING ALL)").format(t=table))
        try:
            types = [
                str(r[0])
                for r in conn.execute(
                    "SELECT format_type(a.atttypid, NULL) FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, i) "
                    "JOIN pg_attribute AS a ON a.attrelid = %s::regclass AND a.attname = c.name ORDER BY c.i",
                    [list(COLUMNS), LIMIT_TABLE],
                ).fetchall()
            ]
            copy_sql = sql.SQL("COPY {t} ({c}) FROM STDIN (FORMAT BINARY)").format(t=table, c=columns)
            for part in read_chunks(settings, topic, chunk):
                nbytes += sum(len(raw) for _p, _o, raw in part)
                envelopes, seconds, bad = _decode(decoder, part)
                decode_s += seconds
                decoded += len(part)
                invalid += bad
                rows = []
                for env in envelopes:  # outside the clock: what a client hands to COPY
                    row = [*astuple(env.event), env.ingested_at, env.partition, env.offset]
                    row[event_id] = uuid.UUID(row[event_id])
                    rows.append(row)
                t0 = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
                copy_s += time.perf_counter() - t0
                copied += len(rows)
                copies += 1
            stored = conn.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=table)).fetchone()
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=table))
            try:
                conn.execute("CHECKPOINT")
            except psycopg.Error:
                pass  # not allowed for this role: the next phase may then see a checkpoint
    mean = nbytes / decoded if decoded else 0.0
    decode = DecodeLimit.timed(decoded, decode_s, invalid=invalid, mean_message_bytes=round(mean, 1))
    postgres = PostgresLimit.timed(
        copied,
        copy_s,
        rows_stored=int(stored[0]) if stored else None,
        copy_statements=copies,
        rows_per_copy=chunk,
        table=f"{LIMIT_TABLE} (LIKE events INCLUDING ALL)",
        format="binary",
    )
    return decode, postgres


def opensearch_limit(settings: Settings, topic: str, index_prefix: str, *, chunk: int = 50_000) -> OpenSearchLimit:
    """Bulk rate of the event documents (the sink's builders and request size) into a scratch prefix."""
    admin = opensearch_client(settings.opensearch, "admin", timeout=120)
    try:
        with (
            private_prefix(admin, IndexNames(index_prefix), templates=settings) as names,
            settings_for_prefix(settings, names) as scoped,
        ):
            return _opensearch_limit(scoped, admin, topic, names, chunk)
    finally:
        admin.close()


def _opensearch_limit(
    settings: Settings, admin: OpenSearch, topic: str, names: IndexNames, chunk: int
) -> OpenSearchLimit:
    client = opensearch_client(settings.opensearch, "app", timeout=120)
    decoder = EventDecoder()
    build_s = bulk_s = 0.0
    docs = requests = nbytes = 0
    try:
        ready: set[str] = set()
        for part in read_chunks(settings, topic, chunk):
            envelopes, _seconds, _bad = _decode(decoder, part)
            t0 = time.perf_counter()
            items = bulk_items(envelopes, [], names)
            bodies = [
                (len(p), bulk_body(p)) for p in chunks(items, max_docs=DEFAULT_MAX_DOCS, max_bytes=DEFAULT_MAX_BYTES)
            ]
            build_s += time.perf_counter() - t0
            for target in {item.target for item in items} - ready:
                create_index(admin, target)  # outside the clock, like the sink's once-per-index check
                ready.add(target)
            t0 = time.perf_counter()
            for count, body in bodies:
                response = client.bulk(
                    body=body,
                    filter_path=BULK_FILTER_PATH,
                    request_timeout=120,
                    headers={"content-type": "application/x-ndjson"},
                )
                if response.get("errors"):
                    raise RuntimeError("OpenSearch rejected documents in the bulk-rate limit run")
                docs += count
                requests += 1
                nbytes += len(body)
            bulk_s += time.perf_counter() - t0
        admin.indices.refresh(index=names.events_alias)
        indexed = int(admin.count(index=names.events_alias)["count"])
    finally:
        client.close()
    return OpenSearchLimit.timed(
        docs,
        bulk_s,
        documents_indexed=indexed,
        requests=requests,
        mean_request_mib=round(nbytes / max(requests, 1) / 2**20, 2),
        build_seconds=round(build_s, 3),
        build_docs_per_s=round(docs / build_s, 1) if build_s > 0 else None,
        max_docs_per_request=DEFAULT_MAX_DOCS,
        concurrency=1,
        scratch_prefix=names.prefix,
    )
