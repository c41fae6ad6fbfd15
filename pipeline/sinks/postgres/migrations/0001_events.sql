-- Raw events: one row per unique event_id, every field of the event contract (v1) plus
-- where the consumer read it. Rows are never updated: a replayed or duplicated message
-- is dropped by the primary key (INSERT ... ON CONFLICT DO NOTHING in the sink).
--
-- Double-braced placeholders are filled by pipeline/sinks/postgres/migrate.py from what the
-- server offers (plain PostgreSQL or TimescaleDB); the checksum covers this text as written.

CREATE TABLE events (
    event_id        uuid        NOT NULL,
    schema_version  smallint    NOT NULL,
    event_type      text        NOT NULL
        CONSTRAINT events_event_type_check
        CHECK (event_type IN ('page_view', 'click', 'search', 'add_to_cart', 'purchase')),
    occurred_at     timestamptz NOT NULL,
    -- Identifiers compare byte-wise (COLLATE "C"): they are opaque, and the session upsert
    -- sorts by session_id, which is several times cheaper without a linguistic collation.
    user_id         text        COLLATE "C" NOT NULL,
    session_id      text        COLLATE "C" NOT NULL,
    page_url        text        NOT NULL,
    -- The one definition of a page path: the URL's path without query or fragment
    -- ('https://shop.example/product/42?ref=x' -> '/product/42'), '/' when the URL has none.
    -- Sessions (landing/exit page, unique pages) and the top_pages view all read this column.
    page_path       text        NOT NULL
        GENERATED ALWAYS AS (
            coalesce(nullif(substring(page_url FROM '^[^:/?#]+://[^/?#]*([^?#]*)'), ''), '/')
        ) STORED,
    referrer        text,
    utm_source      text,
    utm_medium      text,
    utm_campaign    text,
    device_type     text        NOT NULL
        CONSTRAINT events_device_type_check
        CHECK (device_type IN ('desktop', 'mobile', 'tablet')),
    browser         text        NOT NULL,
    os              text        NOT NULL,
    country         text        NOT NULL,
    element_id      text,
    search_query    text,
    product_id      text,
    price           numeric(12, 2),
    order_id        text,
    revenue         numeric(14, 2),
    ingested_at     timestamptz NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    -- Plain PostgreSQL: (event_id). TimescaleDB: (event_id, occurred_at), because every
    -- unique key of a hypertable must contain its time column. Exact duplicates are still
    -- rejected there: a duplicate message (producer retry, consumer replay) carries the same
    -- event_id AND the same occurred_at, so it collides with the stored row all the same.
    CONSTRAINT events_pkey PRIMARY KEY {{events_primary_key}}
);

-- No index on session_id: the session merge (pipeline/sessions/metrics.sql) only reads
-- the events the same transaction inserted, never a session's older ones. (The earlier
-- recompute read them through a covering index on (session_id, occurred_at, event_id);
-- without it the sink's insert step takes about a quarter less time, and it was three
-- times the size of the primary key: see benchmarks/bench_postgres_store.py. A
-- per-session lookup that needs one should add a plain index on session_id.)

-- Time-window queries. BRIN, not B-tree: events arrive roughly in time order, so a
-- block-range summary prunes almost as well for ranges while costing next to nothing on
-- insert (measured: a B-tree here made the sink's INSERT step about a fifth slower).
CREATE INDEX events_occurred_at_idx ON events USING brin (occurred_at);

{{timescaledb_events}}
