"""``page_path``: the one definition of a page, shared with PostgreSQL's generated column."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.events.pages import PAGE_PATH_REGEX, PAGE_PATH_SQL, page_path

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example.com/product/42?ref=x#top", "/product/42"),
        ("https://shop.example.com/product/42/", "/product/42/"),
        ("https://shop.example.com", "/"),
        ("https://shop.example.com/", "/"),
        ("https://shop.example.com?q=1", "/"),
        ("https://shop.example.com#frag", "/"),
        ("http://shop.example.com:8080/a/b;v=1?c#d", "/a/b;v=1"),
        ("https://shop.example.com/%7Euser/Caf%C3%A9", "/%7Euser/Caf%C3%A9"),  # raw, not decoded
        ("https://shop.example.com/A/b", "/A/b"),  # case kept
        ("https://shop.example.com//double", "//double"),
        ("not a url", "/"),
        ("", "/"),
        ("/relative/path", "/"),
    ],
)
def test_page_path_examples(url: str, expected: str) -> None:
    assert page_path(url) == expected


def _random_url(rng: random.Random) -> str:
    """A contract-valid page URL: printable ASCII, http(s), a host without user-info."""
    safe = "".join(c for c in string.printable if "!" <= c <= "~" and c not in "[]")
    host = "".join(rng.choice(string.ascii_lowercase + string.digits + ".-:") for _ in range(rng.randint(1, 20)))
    rest = "".join(rng.choice(safe) for _ in range(rng.randint(0, 40)))
    lead = rng.choice(["", "/", "?", "#"])
    return f"{rng.choice(['http', 'https'])}://{host}{lead}{rest if lead else ''}"


def test_page_path_agrees_with_the_standard_library_on_valid_urls() -> None:
    """An independent definition (urlsplit's path, '/' when empty) gives the same answer."""
    rng = random.Random(5)
    for _ in range(20_000):
        url = _random_url(rng)
        assert page_path(url) == (urlsplit(url).path or "/"), url


def test_the_regex_is_the_one_postgresql_uses() -> None:
    """Drift guard: the events table's generated ``page_path`` column must use this exact expression."""
    migration = REPO / "pipeline" / "sinks" / "postgres" / "migrations" / "0001_events.sql"
    sql = " ".join(migration.read_text().split())
    assert PAGE_PATH_SQL.lower() in sql.lower(), f"{migration} no longer defines page_path as {PAGE_PATH_SQL}"


def test_the_regex_needs_no_python_only_features() -> None:
    """POSIX (PostgreSQL) and Python agree only on the plain subset: no look-arounds, lazies or escapes."""
    assert not re.search(r"\(\?|\*\?|\+\?|\\", PAGE_PATH_REGEX)
