"""Where sessions and events end up: PostgreSQL and OpenSearch."""
