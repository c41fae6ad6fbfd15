"""What "page" means when events are grouped by page: the path of ``page_url``.

One definition for every sink. PostgreSQL (top-page views) and OpenSearch (the
``page_path`` field of an event document) must agree on it, or the two stores would
disagree on something as simple as "top pages". So it is written once, as a regular
expression that means the same in Python's ``re`` and in PostgreSQL's POSIX regex
(only negated character classes and greedy repetition: no look-arounds, no
alternation, nothing where the two engines differ):

    PostgreSQL:  coalesce(nullif(substring(page_url from '^[^:/?#]+://[^/?#]*([^?#]*)'), ''), '/')
    Python:      page_path(page_url)

The path is taken raw, exactly as the URL carries it: no percent-decoding, no case
folding, no trailing-slash trimming. Normalising would merge pages the shop itself
may treat as different, and every extra rule is one more thing the SQL twin would
have to reproduce exactly.
"""

from __future__ import annotations

import re
from typing import Final

PAGE_PATH_REGEX: Final = "^[^:/?#]+://[^/?#]*([^?#]*)"
"""Scheme, ``://``, authority (up to the first ``/``, ``?`` or ``#``), then the path (group 1)."""

PAGE_PATH_SQL: Final = f"coalesce(nullif(substring(page_url from '{PAGE_PATH_REGEX}'), ''), '/')"
"""The same definition as a PostgreSQL expression over a column named ``page_url``."""

ROOT: Final = "/"

_PAGE_PATH: Final = re.compile(PAGE_PATH_REGEX)


def page_path(url: str) -> str:
    """The path of an absolute URL: ``https://shop.example/p/42?x=1#top`` -> ``/p/42``.

    ``/`` when the URL has no path (``https://shop.example`` or ``https://shop.example?q``)
    and, so that the function is total, for text that is not an absolute URL at all
    (the event contract rules that out, but a sink must never crash on it).
    """
    match = _PAGE_PATH.match(url)
    if match is None:
        return ROOT
    return match.group(1) or ROOT
