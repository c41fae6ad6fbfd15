-- The session merge: merges a batch's NEW events into their sessions and returns the
-- current row of every session of the batch. What each column means, its type and how it
-- is merged are declared once, in pipeline/sessions/columns.py; this file holds only the
-- SQL particular to a metric. The placeholders (a name in double braces) are filled from
-- that table when the statement is loaded (pipeline/sinks/postgres/metrics.py):
--
--   first_event_values   the event fields a session takes from its earliest event
--   first_event_merges   the same, merged: the stored value unless a new event is earlier
--   sum_merges           stored + new, for every column summed over the events
--   stored_columns       every column of `sessions`, in table order
--   updates              every column but the key, set from the row just merged
--   document_columns     the columns of a session document (no merge state)
--
-- Input: the temporary table `events_new`, holding exactly the events this transaction
-- has just inserted into `events` (the sink fills it from
-- `INSERT INTO events ... ON CONFLICT DO NOTHING RETURNING ...`, so a duplicate, whether
-- inside the batch, of an event stored long ago, or of one a concurrent writer stored
-- first, is never in it), and the one parameter session_ids (text[]): every session of
-- the batch, new events or not. (No percent sign may appear in this file other than in
-- that parameter: psycopg reads it as a placeholder, even in a comment.)
--
-- "Earliest" and "latest" are by (occurred_at, event_id): events with the same timestamp
-- are ordered by their id, so every run picks the same one.
--
-- page_path is defined once, as a generated column of `events`
-- (pipeline/sinks/postgres/migrations/0001_events.sql).
--
-- Why merging only the new events is exact (the row equals a recomputation from ALL
-- the session's stored events, whatever the order and grouping the events came in):
--
-- * Every stored event is merged exactly once: it is in `events_new` only in the
--   transaction that inserted it, and that transaction both stores it and merges it, or
--   rolls back both. A replayed batch inserts nothing, so it merges nothing and its
--   sessions keep their row, `version` included (after a crash between this commit and
--   the OpenSearch write the rows are still returned, and OpenSearch accepts the equal
--   version again).
-- * Each stored value is a fold with an associative, commutative merge, so adding events
--   in any grouping and order gives the value of all of them at once: counts and revenue
--   add; started_at is the least, ended_at the greatest; viewed_paths is a set union
--   (unique_pages its size, so a path seen in two batches counts once); the earliest
--   event, the landing and the exit page view are minimum/maximum by the total order
--   (occurred_at, event_id), so each keeps its key (first_event_id, landing_event_*,
--   exit_event_*) and a late event wins only if its key is really smaller (or, for the
--   exit, larger). Two distinct stored events never have the same key, so there are no
--   ties to break. The derived columns are functions of the merged values, recomputed
--   each time.
-- * The sink takes a transaction-scoped advisory lock on every session of the batch
--   before this statement, and under READ COMMITTED the statement's snapshot is taken
--   after the locks are granted: the stored row read below is the latest committed one
--   and nobody else changes it until this transaction ends. (Without the locks, two
--   writers could both read the same old row and the later commit would lose the
--   other's events.)
WITH per_event AS (
    -- The batch's new events, per session in (occurred_at, event_id) order; each window
    -- aggregate spans the session's new events. Row 1 is the earliest new event itself.
    SELECT n.session_id, n.event_id, n.occurred_at,
           {{first_event_values}},
           row_number()     OVER w AS position,
           max(occurred_at) OVER w AS last_at,
           count(*)         OVER w AS events,
           count(*) FILTER (WHERE event_type = 'page_view')   OVER w AS page_views,
           count(*) FILTER (WHERE event_type = 'click')       OVER w AS clicks,
           count(*) FILTER (WHERE event_type = 'search')      OVER w AS searches,
           count(*) FILTER (WHERE event_type = 'add_to_cart') OVER w AS add_to_carts,
           count(*) FILTER (WHERE event_type = 'purchase')    OVER w AS purchases,
           coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase') OVER w, 0) AS revenue,
           -- the new page views in event order (NULL when there are none)
           array_agg(page_path COLLATE "C") FILTER (WHERE event_type = 'page_view') OVER w AS pv_paths,
           array_agg(occurred_at)           FILTER (WHERE event_type = 'page_view') OVER w AS pv_at,
           array_agg(event_id)              FILTER (WHERE event_type = 'page_view') OVER w AS pv_ids
    FROM events_new AS n
    WINDOW w AS (PARTITION BY session_id ORDER BY occurred_at, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), batch AS (
    -- One row per session with new events: what those events alone contribute.
    SELECT p.*,
           coalesce(cardinality(p.pv_at), 0) AS pv_count,
           -- the distinct paths of the new page views (at most one: no work)
           CASE WHEN p.pv_at IS NULL THEN ARRAY[]::text[]
                WHEN cardinality(p.pv_at) = 1 THEN p.pv_paths
                ELSE ARRAY(SELECT DISTINCT path FROM unnest(p.pv_paths) AS path)
           END AS new_paths
    FROM per_event AS p
    WHERE p.position = 1
), merged AS (
    -- The stored row (o, absent for a new session) merged with the batch's part (b).
    -- viewed_paths stays a set (each path once, unordered): only containment and the
    -- size are ever asked of it, and the common cases (path known, one new path) need
    -- no sub-query.
    SELECT b.session_id,
           {{first_event_merges}},
           {{sum_merges}},
           CASE WHEN wins.first_event THEN b.event_id ELSE o.first_event_id END AS first_event_id,
           least(o.started_at, b.occurred_at)                           AS started_at,
           greatest(o.ended_at, b.last_at)                              AS ended_at,
           CASE WHEN wins.landing_view THEN b.pv_paths[1]  ELSE o.landing_page     END AS landing_page,
           CASE WHEN wins.landing_view THEN b.pv_at[1]     ELSE o.landing_event_at END AS landing_event_at,
           CASE WHEN wins.landing_view THEN b.pv_ids[1]    ELSE o.landing_event_id END AS landing_event_id,
           CASE WHEN wins.exit_view THEN b.pv_paths[b.pv_count] ELSE o.exit_page     END AS exit_page,
           CASE WHEN wins.exit_view THEN b.pv_at[b.pv_count]    ELSE o.exit_event_at END AS exit_event_at,
           CASE WHEN wins.exit_view THEN b.pv_ids[b.pv_count]   ELSE o.exit_event_id END AS exit_event_id,
           CASE WHEN o.viewed_paths IS NULL THEN b.new_paths
                WHEN o.viewed_paths @> b.new_paths THEN o.viewed_paths
                WHEN cardinality(b.new_paths) = 1 THEN o.viewed_paths || b.new_paths
                ELSE o.viewed_paths || ARRAY(SELECT path FROM unnest(b.new_paths) AS path
                                             WHERE path <> ALL (o.viewed_paths))
           END                                                          AS viewed_paths,
           coalesce(o.version, 0) + 1                                   AS version
    FROM batch AS b
    LEFT JOIN sessions AS o ON o.session_id = b.session_id
    -- which of the batch's events win: the earliest event, the earliest and latest page view
    CROSS JOIN LATERAL (
        SELECT o.session_id IS NULL
                   OR (b.occurred_at, b.event_id) < (o.started_at, o.first_event_id) AS first_event,
               b.pv_count > 0 AND (o.landing_event_at IS NULL
                   OR (b.pv_at[1], b.pv_ids[1]) < (o.landing_event_at, o.landing_event_id)) AS landing_view,
               b.pv_count > 0 AND (o.exit_event_at IS NULL
                   OR (b.pv_at[b.pv_count], b.pv_ids[b.pv_count]) > (o.exit_event_at, o.exit_event_id)) AS exit_view
    ) AS wins
), written AS (
    INSERT INTO sessions AS s ({{stored_columns}})
    SELECT {{stored_columns}}
    FROM merged AS m
    -- The derived columns: functions of the merged ones, recomputed at every write (one
    -- lateral per step, so a column can use the ones before it).
    CROSS JOIN LATERAL (
        SELECT round(extract(EPOCH FROM m.ended_at - m.started_at), 3) AS duration_s,
               cardinality(m.viewed_paths)                              AS unique_pages,
               m.purchases > 0                                          AS converted,
               now()                                                    AS updated_at
    ) AS d
    CROSS JOIN LATERAL (
        SELECT d.duration_s >= 10 OR m.page_views >= 2 OR d.converted AS is_engaged
    ) AS e
    CROSS JOIN LATERAL (
        SELECT NOT e.is_engaged AS is_bounce
    ) AS f
    ORDER BY m.session_id
    -- The row exists exactly when merged read it (the session lock keeps it so); the
    -- merged values replace it.
    ON CONFLICT (session_id) DO UPDATE SET {{updates}}
    RETURNING s.*
), latest AS (
    -- every session of the batch: as just written, or (no new events) as stored
    SELECT * FROM written
    UNION ALL
    SELECT o.*
    FROM unnest(%(session_ids)s::text[]) AS q (session_id)
    JOIN sessions AS o ON o.session_id = q.session_id
    WHERE NOT EXISTS (SELECT FROM events_new AS n WHERE n.session_id = q.session_id)
)
-- The session document: the public columns only, never the merge state.
SELECT {{document_columns}}
FROM latest
