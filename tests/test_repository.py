"""Rules about the repository itself, checked like any other behaviour."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

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


# -- the dependency lock ------------------------------------------------------------------

LOCK = REPO_ROOT / "requirements.lock"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def version(self) -> Version | None:
        """The exact version, or None when the line is not one ``name==version``."""
        specs = list(self.requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            return None
        return Version(specs[0].version)


def read_lock(text: str) -> dict[NormalizedName, Pin]:
    """The requirements of a requirements file in the form ``make lock`` writes: one per
    backslash-continued line, each followed by its ``--hash`` options; option lines and
    comments carry no requirement."""
    pins: dict[NormalizedName, Pin] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement, *hashes = (part.strip() for part in line.split(" --hash="))
        parsed = Requirement(requirement)
        name = canonicalize_name(parsed.name)
        assert name not in pins, f"{name} is locked twice"
        pins[name] = Pin(parsed, tuple(hashes))
    return pins


def pyproject_requirements() -> list[str]:
    """Every requirement pyproject.toml names: the project's, each extra's, each dependency
    group's and the build backend's, all of which ``scripts/setup.sh`` installs from the lock."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    return [
        *project["dependencies"],
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
        *(r for group in pyproject.get("dependency-groups", {}).values() for r in group),
        *pyproject["build-system"]["requires"],
    ]


def test_every_locked_package_is_one_exact_version_with_hashes() -> None:
    """``--require-hashes`` installs refuse anything less; found here first, with the culprit named."""
    pins = read_lock(LOCK.read_text(encoding="utf-8"))
    assert pins, "the lock pins nothing"
    loose = sorted(str(p.requirement) for p in pins.values() if p.version is None or p.requirement.url)
    assert loose == [], "not pinned to one version"
    unhashed = sorted(str(p.requirement) for p in pins.values() if not p.hashes)
    assert unhashed == [], "no hash"
    malformed = sorted(h for p in pins.values() for h in p.hashes if not _SHA256.fullmatch(h))
    assert malformed == [], "not a sha256 hash"


def test_the_lock_installs_wheels_only() -> None:
    """A source build would fetch its own build dependencies, unpinned and unhashed."""
    options = [line.strip() for line in LOCK.read_text(encoding="utf-8").splitlines() if line.startswith("--")]
    assert "--only-binary :all:" in options


@pytest.mark.parametrize("requirement", pyproject_requirements())
def test_each_requirement_of_pyproject_is_locked_at_a_version_it_allows(requirement: str) -> None:
    """Adding a dependency or raising a floor without ``make lock`` fails here, not on a fresh clone."""
    wanted = Requirement(requirement)
    pin = read_lock(LOCK.read_text(encoding="utf-8")).get(canonicalize_name(wanted.name))
    assert pin is not None, f"{wanted.name} is not in {LOCK.name}: run make lock"
    assert pin.version is not None and wanted.specifier.contains(pin.version, prereleases=True), (
        f"{LOCK.name} has {pin.requirement}, outside {requirement}: run make lock"
    )
