"""The OpenSearch side of the consumer, pure parts apart from I/O.

* ``mappings``: the index templates' bodies (pure; no client library is imported);
* ``documents``: events and session rows as bulk NDJSON (pure);
* ``templates``: puts the templates and creates and checks the indices (admin URI, once
  at start-up);
* ``index``: ``OpenSearchIndex``, the bulk sink that writes each batch (application URI);
* ``failures``: the client's exceptions as the pipeline's typed errors.

Names derive from a prefix (``pipeline.contract.names``), ``clickstream`` in production,
so tests and benchmarks work in indices of their own.
"""
