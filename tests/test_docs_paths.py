"""Every repository path the docs, docstrings and comments name exists.

Files move (the session merge left ``pipeline/sessions/`` for the PostgreSQL sink) and
prose that names them stays behind, pointing a reader at nothing. A path is recognised
by its first component being one of the repository's own top-level folders, read from
``git ls-files`` so a new folder is covered without touching this file. Python files are
read whole: a docstring, a comment and a string in code are held to the same rule.

What looks like a path but is not one, by rule rather than by list:

* a last component of one letter is a rate's unit ("docs/s" in "118k docs/s");
* a path continued by a placeholder or wildcard (``<``, ``{``, ``*``, ``[``) is a pattern;
* released migrations are not read: their checksum freezes their text, so they keep the
  paths of the day they were released (``pipeline.sinks.postgres.migrate``).

Markdown links are checked too, relative to the file that holds them.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import PurePosixPath

from pipeline.sinks.postgres.migrate import MIGRATIONS_DIR, MIGRATIONS_PACKAGE
from tests.conftest import REPO_ROOT

_SOURCES = ("*.md", "*.py", "*.sql", "*.sh", "Makefile", ".ci/run")
_PLACEHOLDER_START = "<{*["
_FROZEN = PurePosixPath(*MIGRATIONS_PACKAGE.split("."), MIGRATIONS_DIR)
# [text](target) with a target that is neither a URL, nor a mail address, nor an anchor alone.
_MARKDOWN_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)")


def _tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@cache
def _path_pattern() -> re.Pattern[str]:
    folders = sorted({name.split("/")[0] for name in _tracked() if "/" in name})
    # Not preceded by a path character, so ".devstack/" or "https://host/docs/" do not start one.
    return re.compile(r"(?<![\w./-])((?:" + "|".join(map(re.escape, folders)) + r")/[\w./-]*)")


def named_paths(text: str) -> set[str]:
    """The repository paths ``text`` names (as written, relative to the repository root)."""
    found = set()
    for match in _path_pattern().finditer(text):
        path = match.group(1).rstrip(".")
        if text[match.end() : match.end() + 1] in set(_PLACEHOLDER_START):
            continue
        if len(path.rstrip("/").rsplit("/", 1)[-1]) == 1:
            continue
        found.add(path)
    return found


def linked_paths(markdown: str) -> set[str]:
    """The local targets of a Markdown file's links, without their anchors."""
    return {target.split("#", 1)[0] for target in _MARKDOWN_LINK.findall(markdown)}


def test_every_path_named_in_docs_and_code_exists() -> None:
    missing = []
    for source in _tracked(*_SOURCES):
        if PurePosixPath(source).parent == _FROZEN:
            continue
        text = (REPO_ROOT / source).read_text(encoding="utf-8")
        missing += [f"{source}: {path}" for path in sorted(named_paths(text)) if not (REPO_ROOT / path).exists()]
        if source.endswith(".md"):
            folder = (REPO_ROOT / source).parent
            missing += [f"{source}: link {link}" for link in sorted(linked_paths(text)) if not (folder / link).exists()]
    assert missing == []


def test_paths_are_told_from_units_patterns_and_punctuation() -> None:
    # The missing file is built from parts so that the scan above does not read it here.
    nowhere = "pipeline/" + "nowhere.py"
    text = (
        f"See pipeline/sinks/writer.py. Also {nowhere}, and docs/ at 118k docs/s; "
        "pipeline/sinks/postgres/migrations/NNNN_<name>.sql and tests/unit/*.py are patterns; "
        "~/.cache/x, .devstack/stack-outputs.json and https://example.org/docs/a.md are not ours."
    )
    assert named_paths(text) == {"pipeline/sinks/writer.py", nowhere, "docs/"}


def test_markdown_links_keep_local_targets_only() -> None:
    text = "[a](docs/decisions.md#measurements) [b](https://aiven.io/docs) [c](#tests) [d](mailto:x@example.org)"
    assert linked_paths(text) == {"docs/decisions.md"}
