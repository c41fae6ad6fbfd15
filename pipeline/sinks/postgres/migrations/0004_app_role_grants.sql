-- Everything the application role (the consumer and `pipeline summary`) may do, and no
-- more: it cannot create, alter, drop, delete or truncate anything. {{app_role}} is the
-- user of the stack's application URI, {{database}} the current database.
--
-- Events are append-only (duplicates are dropped with ON CONFLICT DO NOTHING), so the role
-- gets no UPDATE on them; sessions are upserted (INSERT ... ON CONFLICT DO UPDATE).
-- TEMPORARY: the sink COPYs each batch into a temporary staging table first.

GRANT CONNECT, TEMPORARY ON DATABASE {{database}} TO {{app_role}};
GRANT USAGE ON SCHEMA public TO {{app_role}};

GRANT SELECT, INSERT ON events TO {{app_role}};
GRANT SELECT, INSERT, UPDATE ON sessions TO {{app_role}};
GRANT SELECT ON stats_per_minute, stats_per_hour, top_pages TO {{app_role}};

-- PostgreSQL 15 and later already deny CREATE in the public schema to ordinary roles;
-- older servers allow it to everyone, which would let the application role create tables.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
