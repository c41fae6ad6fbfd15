"""The table of session columns, and what is generated from it, checked without a server."""

from __future__ import annotations

from pipeline.sessions.columns import COLUMNS, Part
from pipeline.sinks.opensearch.mappings import SESSION_PROPERTIES


def test_the_table_gives_the_hand_written_session_mapping() -> None:
    """Before the mapping is generated from the table: the two agree, field by field and in order."""
    generated = {c.name: {"type": c.opensearch} for c in COLUMNS if c.part is not Part.STATE}
    assert list(generated.items()) == list(SESSION_PROPERTIES.items())
