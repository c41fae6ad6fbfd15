"""A private OpenSearch index prefix: its names, optionally its templates or a user of its own, and its removal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

from opensearchpy import OpenSearch

from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.sinks.opensearch.templates import delete_all, ensure_templates
from pipeline.sinks.opensearch_client import opensearch_client
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


@dataclass(frozen=True)
class PrefixUser:
    """A private prefix and a pipeline user limited to it, as the consumer runs in production."""

    names: IndexNames
    settings: Settings
    """The stack's settings with that user's OpenSearch URI."""
    client: OpenSearch
    """A client of that user."""


@contextmanager
def private_prefix_user(settings: Settings, admin: OpenSearch, names: IndexNames | None = None) -> Iterator[PrefixUser]:
    """A fresh prefix (``names``, or new ones) with a user of its own and a client of that user.

    At the end the user and its role are removed, then every index and template of the prefix.
    """
    with (
        private_prefix(admin, names) as prefix,
        settings_for_prefix(settings, prefix) as scoped,
        closing(opensearch_client(scoped.opensearch)) as client,
    ):
        yield PrefixUser(prefix, scoped, client)
