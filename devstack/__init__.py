"""The local stack: real Kafka, PostgreSQL and OpenSearch on this machine, no Docker.

Tooling for development, tests and benchmarks; the ``pipeline`` package never imports it.
It writes its connection details as a stack-outputs file in the exact shape that
``pulumi stack output --json --show-secrets`` prints, so the pipeline reads a local
stack and an Aiven stack the same way.
"""
