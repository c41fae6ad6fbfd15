"""The consumer's tunable defaults, in a module light enough for the CLI to import at start-up.

Why a module of their own: ``pipeline consume``'s options show these defaults and
``ConsumeOptions`` uses them; importing the consume job itself (confluent-kafka, the sinks)
only to read two numbers would slow every command down.
"""

from __future__ import annotations

from typing import Final

BATCH_SIZE: Final = 5_000
"""Messages per batch at most (fewer when ``BATCH_WAIT_S`` passes first)."""
MAX_BATCH_SIZE: Final = 100_000
IN_FLIGHT: Final = 2
"""Batches written at once. Two: a batch's round trips to PostgreSQL and OpenSearch are
hidden behind the other's, which pays most when the services are far away (measured in
docs/decisions.md); more kept few of their gains on the development machine."""
MAX_IN_FLIGHT: Final = 4
