"""The root process of each service of the local stack, by the names the benchmarks report them under.

Why here: devstack started the processes and keeps their pid files, so it is the one place
that knows which Kafka, PostgreSQL and OpenSearch processes are this stack's, and not
another checkout's stack on the same machine.
"""

from __future__ import annotations

from devstack import kafka, opensearch, postgres
from devstack.layout import Layout


def service_pids(layout: Layout) -> dict[str, int | None]:
    """Each service's root process id, or None when it is not running."""
    return {"kafka": kafka.pid(layout), "opensearch": opensearch.pid(layout), "postgresql": postgres.pid(layout)}
