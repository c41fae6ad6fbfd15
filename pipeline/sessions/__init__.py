"""Sessions: what a session row holds, declared once (``columns``).

The merge that keeps the rows current is the PostgreSQL sink's (``pipeline.sinks.postgres.metrics``,
``metrics.sql``); the OpenSearch mapping of a session document is generated from the same
table (``pipeline.sinks.opensearch.mappings``).
"""
