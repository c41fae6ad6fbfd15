-- THE definition of every session metric. Merges a batch's NEW events into their sessions
-- and returns the current row of every session of the batch.
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
--   user_id, referrer, utm_source, utm_medium, utm_campaign,
--   device_type, browser, os, country
--                 taken from the session's earliest event
--   started_at    earliest occurred_at
--   ended_at      latest occurred_at
--   duration_s    ended_at - started_at in seconds, rounded to milliseconds
--   events        number of distinct events
--   page_views, clicks, searches, add_to_carts, purchases
--                 number of events of that type
--   unique_pages  distinct page_path among page_view events
--   revenue       sum of `revenue` over purchase events, 0 when there are none
--   landing_page  page_path of the earliest page_view (NULL without page views)
--   exit_page     page_path of the latest page_view (NULL without page views)
--   converted     purchases > 0
--   is_engaged    duration_s >= 10 OR page_views >= 2 OR converted
--                 (Google Analytics 4's "engaged session")
--   is_bounce     NOT is_engaged
--   version       1 on the first write, +1 on every write that merges new events
--                 (OpenSearch external version)
--   updated_at    time of the last writing transaction
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
           n.user_id, n.referrer, n.utm_source, n.utm_medium, n.utm_campaign,
           n.device_type, n.browser, n.os, n.country,
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
           CASE WHEN wins.first_event THEN b.user_id      ELSE o.user_id      END AS user_id,
           CASE WHEN wins.first_event THEN b.event_id     ELSE o.first_event_id END AS first_event_id,
           least(o.started_at, b.occurred_at)                           AS started_at,
           greatest(o.ended_at, b.last_at)                              AS ended_at,
           coalesce(o.events, 0)       + b.events                       AS events,
           coalesce(o.page_views, 0)   + b.page_views                   AS page_views,
           coalesce(o.clicks, 0)       + b.clicks                       AS clicks,
           coalesce(o.searches, 0)     + b.searches                     AS searches,
           coalesce(o.add_to_carts, 0) + b.add_to_carts                 AS add_to_carts,
           coalesce(o.purchases, 0)    + b.purchases                    AS purchases,
           coalesce(o.revenue, 0)      + b.revenue                      AS revenue,
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
           CASE WHEN wins.first_event THEN b.referrer     ELSE o.referrer     END AS referrer,
           CASE WHEN wins.first_event THEN b.utm_source   ELSE o.utm_source   END AS utm_source,
           CASE WHEN wins.first_event THEN b.utm_medium   ELSE o.utm_medium   END AS utm_medium,
           CASE WHEN wins.first_event THEN b.utm_campaign ELSE o.utm_campaign END AS utm_campaign,
           CASE WHEN wins.first_event THEN b.device_type  ELSE o.device_type  END AS device_type,
           CASE WHEN wins.first_event THEN b.browser      ELSE o.browser      END AS browser,
           CASE WHEN wins.first_event THEN b.os           ELSE o.os           END AS os,
           CASE WHEN wins.first_event THEN b.country      ELSE o.country      END AS country,
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
    INSERT INTO sessions AS s (
        session_id, user_id, started_at, ended_at, duration_s,
        events, page_views, unique_pages, clicks, searches, add_to_carts, purchases, revenue,
        landing_page, exit_page,
        referrer, utm_source, utm_medium, utm_campaign, device_type, browser, os, country,
        converted, is_engaged, is_bounce, version, updated_at,
        first_event_id, landing_event_at, landing_event_id, exit_event_at, exit_event_id, viewed_paths
    )
    SELECT m.session_id, m.user_id, m.started_at, m.ended_at, d.duration_s,
           m.events, m.page_views, cardinality(m.viewed_paths), m.clicks, m.searches, m.add_to_carts, m.purchases,
           m.revenue,
           m.landing_page, m.exit_page,
           m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.device_type, m.browser, m.os, m.country,
           d.converted, e.is_engaged, NOT e.is_engaged, m.version, now(),
           m.first_event_id, m.landing_event_at, m.landing_event_id, m.exit_event_at, m.exit_event_id, m.viewed_paths
    FROM merged AS m
    CROSS JOIN LATERAL (
        SELECT round(extract(EPOCH FROM m.ended_at - m.started_at), 3) AS duration_s,
               m.purchases > 0                                         AS converted
    ) AS d
    CROSS JOIN LATERAL (
        SELECT d.duration_s >= 10 OR m.page_views >= 2 OR d.converted AS is_engaged
    ) AS e
    ORDER BY m.session_id
    -- The row exists exactly when merged read it (the session lock keeps it so); the
    -- merged values replace it.
    ON CONFLICT (session_id) DO UPDATE SET
        user_id          = excluded.user_id,
        started_at       = excluded.started_at,
        ended_at         = excluded.ended_at,
        duration_s       = excluded.duration_s,
        events           = excluded.events,
        page_views       = excluded.page_views,
        unique_pages     = excluded.unique_pages,
        clicks           = excluded.clicks,
        searches         = excluded.searches,
        add_to_carts     = excluded.add_to_carts,
        purchases        = excluded.purchases,
        revenue          = excluded.revenue,
        landing_page     = excluded.landing_page,
        exit_page        = excluded.exit_page,
        referrer         = excluded.referrer,
        utm_source       = excluded.utm_source,
        utm_medium       = excluded.utm_medium,
        utm_campaign     = excluded.utm_campaign,
        device_type      = excluded.device_type,
        browser          = excluded.browser,
        os               = excluded.os,
        country          = excluded.country,
        converted        = excluded.converted,
        is_engaged       = excluded.is_engaged,
        is_bounce        = excluded.is_bounce,
        version          = excluded.version,
        updated_at       = excluded.updated_at,
        first_event_id   = excluded.first_event_id,
        landing_event_at = excluded.landing_event_at,
        landing_event_id = excluded.landing_event_id,
        exit_event_at    = excluded.exit_event_at,
        exit_event_id    = excluded.exit_event_id,
        viewed_paths     = excluded.viewed_paths
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
-- The session document: the public columns only, never the merge state. This final
-- SELECT is THE list of them (the OpenSearch mapping test reads it: keep it top level,
-- one plain column name per item).
SELECT session_id, user_id, started_at, ended_at, duration_s,
       events, page_views, unique_pages, clicks, searches, add_to_carts, purchases, revenue,
       landing_page, exit_page,
       referrer, utm_source, utm_medium, utm_campaign, device_type, browser, os, country,
       converted, is_engaged, is_bounce, version, updated_at
FROM latest
