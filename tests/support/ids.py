"""Names for what a test or benchmark makes on the shared stack: unique, and telling whose they are."""

from __future__ import annotations

import uuid


def private_id(tag: str = "t") -> str:
    """``<tag><10 random hex digits>``: tests use ``t``, benchmarks ``b``, so a leftover tells where it came from."""
    return f"{tag}{uuid.uuid4().hex[:10]}"
