"""The contract: what the Pulumi program, the local stack and the pipeline agree on.

* :mod:`pipeline.contract.names`: principals, topics, the consumer group, database and
  role, the OpenSearch user and index names.
* :mod:`pipeline.contract.outputs`: the stack outputs, with which of them are secret.
* :mod:`pipeline.contract.event`: the clickstream event (version 1), and
  :mod:`pipeline.contract.schema` its published JSON Schema.

Pure definitions with no client library behind them, so ``infra`` and ``devstack`` can
import them without pulling in Kafka, PostgreSQL or OpenSearch drivers.
"""
