"""The OpenSearch side of the consumer: index templates, document builders and the bulk sink.

``ensure_templates`` (admin URI, once at start-up) shapes the indices; ``OpenSearchIndex``
(application URI) writes each batch. Names derive from a prefix, ``clickstream`` in
production, so tests and benchmarks work in indices of their own.
"""

from pipeline.sinks.opensearch.index import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DOCS,
    OpenSearchIndex,
    RetryPolicy,
)
from pipeline.sinks.opensearch.templates import delete_all, ensure_templates

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DOCS",
    "OpenSearchIndex",
    "RetryPolicy",
    "delete_all",
    "ensure_templates",
]
