"""A private OpenSearch index prefix: its names, optionally its templates, and its removal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from opensearchpy import OpenSearch

from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.sinks.opensearch.templates import delete_all, ensure_templates
from tests.support.ids import private_id


def private_names(tag: str = "t") -> IndexNames:
    """Names under a fresh prefix ``<tag><random>-clickstream`` (the pipeline's patterns, nobody else's indices)."""
    return IndexNames(f"{private_id(tag)}-clickstream")


@contextmanager
def private_prefix(
    admin: OpenSearch,
    names: IndexNames | None = None,
    *,
    templates: Settings | None = None,
    now: dt.datetime | None = None,
) -> Iterator[IndexNames]:
    """A prefix whose indices and templates are all deleted at the end; with ``templates`` (the
    settings to put them with), the real templates are put first, ``now`` choosing the month's index."""
    names = names or private_names()
    try:
        if templates is not None:
            ensure_templates(templates, names.prefix, now=now, client=admin)
        yield names
    finally:
        delete_all(admin, names)
