"""Rules about the repository itself, checked like any other behaviour."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

# Built from parts so that this file does not match its own pattern.
_SYS_PATH_EDIT = re.compile(r"\bsys\." + r"path\s*(\.(insert|append|extend|remove)\b|\[|[+]?=)")


def tracked_python_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_no_code_edits_the_import_path() -> None:
    """Every module is imported by its package name: no sys.path surgery anywhere."""
    offenders = [
        f"{path}:{number}"
        for path in tracked_python_files()
        for number, line in enumerate((REPO_ROOT / path).read_text().splitlines(), 1)
        if _SYS_PATH_EDIT.search(line)
    ]
    assert offenders == []


def test_the_pulumi_program_imports_no_client_library() -> None:
    """``pulumi up`` loads the program and the contract only: no Kafka, PostgreSQL or OpenSearch driver."""
    probe = (
        "import sys, infra.component, infra.config\n"
        "drivers = {'confluent_kafka', 'psycopg', 'opensearchpy'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & drivers))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
