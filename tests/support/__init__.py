"""The test kit: what tests and benchmarks need to work against the real local stack, written once.

Benchmarks import it as ``tests.support`` (they run from the checkout with
``python -m benchmarks.NAME``), so a world, an event or a reading of the stores means the
same in a test and in a measurement.

* ``world``: a private pipeline world (topics with the production ACLs, groups, database,
  index prefix with its own user, outputs file) and the CLI driven against it; built from
  ``kafka_topics``, ``postgres_db`` and ``opensearch_prefix``, removed through ``cleanup``;
  names from ``ids``.
* ``kafka_offsets``: end offsets, committed offsets and setting them, from outside.
* ``sink_readers``: rows, document counts and documents, as the admin of each store.
* ``events``: hand-built events, envelopes and session rows; ``event_strategies``: the
  Hypothesis strategies of the contract.
* ``truth``, ``sink_contents``: the independent session truth and the comparisons with it.
* ``process_control``: waiting for conditions, consumers' partitions, stopping and killing.
* ``java_producer``, ``pulumi_cli``, ``browser``, ``terminal``, ``fake_dashboards``: outside
  tools and stand-ins used by single test files.
"""
