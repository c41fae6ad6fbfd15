-- One row per session_id. Every column is written only by pipeline/sessions/metrics.sql,
-- which merges each batch's NEW events into the row: look there for what a column means
-- and why the merge is exact. This file only fixes names and types.

CREATE TABLE sessions (
    session_id       text           COLLATE "C" PRIMARY KEY,
    user_id          text           COLLATE "C" NOT NULL,
    started_at       timestamptz    NOT NULL,
    ended_at         timestamptz    NOT NULL,
    duration_s       numeric(12, 3) NOT NULL,
    events           integer        NOT NULL,
    page_views       integer        NOT NULL,
    unique_pages     integer        NOT NULL,
    clicks           integer        NOT NULL,
    searches         integer        NOT NULL,
    add_to_carts     integer        NOT NULL,
    purchases        integer        NOT NULL,
    revenue          numeric(16, 2) NOT NULL,
    landing_page     text,
    exit_page        text,
    referrer         text,
    utm_source       text,
    utm_medium       text,
    utm_campaign     text,
    device_type      text           NOT NULL,
    browser          text           NOT NULL,
    os               text           NOT NULL,
    country          text           NOT NULL,
    converted        boolean        NOT NULL,
    is_engaged       boolean        NOT NULL,
    is_bounce        boolean        NOT NULL,
    -- 1 on the first write, +1 on every write that merges new events into the session;
    -- the OpenSearch sink uses it as the external document version so an older session
    -- document can never overwrite a newer one, whatever order the writes reach OpenSearch in.
    version          bigint         NOT NULL,
    updated_at       timestamptz    NOT NULL,
    -- Merge state: what the next batch's merge compares against, never part of a session
    -- document (the sink returns only the columns above). The earliest event is
    -- (started_at, first_event_id); the earliest and latest page_view are
    -- (landing_event_at, landing_event_id) and (exit_event_at, exit_event_id), NULL
    -- while the session has no page view; viewed_paths holds the distinct page_path
    -- values of its page views, each once, in no particular order (unique_pages is its
    -- cardinality).
    first_event_id   uuid           NOT NULL,
    landing_event_at timestamptz,
    landing_event_id uuid,
    exit_event_at    timestamptz,
    exit_event_id    uuid,
    viewed_paths     text[]         COLLATE "C" NOT NULL
)
-- Every batch rewrites the rows of its sessions; free space on each page lets PostgreSQL
-- keep the new version on the same page without touching the indexes (a HOT update).
WITH (fillfactor = 70);

-- The time-bucket views and `pipeline summary` select sessions by start time.
CREATE INDEX sessions_started_at_idx ON sessions (started_at);
