-- Reporting views: traffic per time bucket (minute, hour) and the most viewed pages.
--
-- Both time-bucket views are the same query at two widths, so it is written once, as a
-- SQL function the planner inlines (LANGUAGE sql, STABLE, not STRICT, one SELECT): a
-- filter on `bucket` in a query over a view is still pushed down into both arms.
-- The bucket function is TimescaleDB's time_bucket when the server has it (it knows how
-- to walk hypertable chunks in time order), otherwise core PostgreSQL's date_bin; with the
-- same origin (UTC midnight, 2000-01-01) both give identical minute and hour buckets.
--
-- Definitions (sessions count in the bucket they STARTED in; events in the bucket they
-- OCCURRED in):
--   sessions_started  sessions whose started_at falls in the bucket
--   active_users      distinct user_id over all events in the bucket
--   page_views        page_view events in the bucket
--   bounce_rate, engagement_rate, conversion_rate
--                     share (0..1) of the sessions started in the bucket that are
--                     is_bounce / is_engaged / converted; NULL when no session started
--   revenue           sum of `revenue` of the purchase events in the bucket (0 if none)

CREATE FUNCTION stats_by_bucket(bucket_width interval)
RETURNS TABLE (
    bucket           timestamptz,
    sessions_started bigint,
    active_users     bigint,
    page_views       bigint,
    bounce_rate      numeric,
    engagement_rate  numeric,
    conversion_rate  numeric,
    revenue          numeric
)
LANGUAGE sql
STABLE
AS $$
    SELECT parts.bucket,
           sum(parts.sessions_started)::bigint,
           sum(parts.active_users)::bigint,
           sum(parts.page_views)::bigint,
           sum(parts.bounces) / nullif(sum(parts.sessions_started), 0),
           sum(parts.engaged) / nullif(sum(parts.sessions_started), 0),
           sum(parts.converted) / nullif(sum(parts.sessions_started), 0),
           sum(parts.revenue)
    FROM (
        SELECT {{time_bucket}}(bucket_width, s.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               count(*)                           AS sessions_started,
               count(*) FILTER (WHERE s.is_bounce)  AS bounces,
               count(*) FILTER (WHERE s.is_engaged) AS engaged,
               count(*) FILTER (WHERE s.converted)  AS converted,
               0::bigint                          AS active_users,
               0::bigint                          AS page_views,
               0::numeric                         AS revenue
        FROM sessions AS s
        GROUP BY 1
        UNION ALL
        SELECT {{time_bucket}}(bucket_width, e.occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               0, 0, 0, 0,
               count(DISTINCT e.user_id),
               count(*) FILTER (WHERE e.event_type = 'page_view'),
               coalesce(sum(e.revenue) FILTER (WHERE e.event_type = 'purchase'), 0)
        FROM events AS e
        GROUP BY 1
    ) AS parts
    GROUP BY parts.bucket
$$;

CREATE VIEW stats_per_minute AS
    SELECT * FROM stats_by_bucket(INTERVAL '1 minute');

CREATE VIEW stats_per_hour AS
    SELECT * FROM stats_by_bucket(INTERVAL '1 hour');

-- Pages by page_view events over all stored data:
--   page_views       page_view events on the path
--   unique_sessions  distinct sessions with at least one page_view on the path
--   landings, exits  sessions whose landing_page / exit_page is the path
CREATE VIEW top_pages AS
    WITH viewed AS (
        SELECT page_path, count(*) AS page_views, count(DISTINCT session_id) AS unique_sessions
        FROM events
        WHERE event_type = 'page_view'
        GROUP BY page_path
    ), landed AS (
        SELECT landing_page AS page_path, count(*) AS landings
        FROM sessions
        WHERE landing_page IS NOT NULL
        GROUP BY landing_page
    ), exited AS (
        SELECT exit_page AS page_path, count(*) AS exits
        FROM sessions
        WHERE exit_page IS NOT NULL
        GROUP BY exit_page
    )
    SELECT viewed.page_path,
           viewed.page_views,
           viewed.unique_sessions,
           coalesce(landed.landings, 0) AS landings,
           coalesce(exited.exits, 0)    AS exits
    FROM viewed
    LEFT JOIN landed USING (page_path)
    LEFT JOIN exited USING (page_path);
