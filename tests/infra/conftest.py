"""Fixtures for the infra tests; the machinery lives in ``infra_harness``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # `import infra_harness` must work in any pytest import mode
    sys.path.insert(0, _HERE)

from infra_harness import PROJECT_ROOT, STACK, ProgramRun, ProgramRunner, load_yaml, stack_config  # noqa: E402


@pytest.fixture(scope="session")
def pulumi_yaml() -> dict[str, Any]:
    return load_yaml(PROJECT_ROOT / "Pulumi.yaml")


@pytest.fixture(scope="session")
def dev_stack_yaml() -> dict[str, Any]:
    return load_yaml(PROJECT_ROOT / f"Pulumi.{STACK}.yaml")


@pytest.fixture(scope="session")
def dev_config(pulumi_yaml: dict[str, Any], dev_stack_yaml: dict[str, Any]) -> dict[str, str]:
    """What ``pulumi up`` on the dev stack would hand the program."""
    return stack_config(pulumi_yaml, dev_stack_yaml)


@pytest.fixture
def run_program() -> Iterator[ProgramRunner]:
    """A fresh runner per test; Pulumi's global state is reset around every run."""
    yield ProgramRunner()


@pytest.fixture
def dev_run(run_program: ProgramRunner, dev_config: dict[str, str]) -> ProgramRun:
    return run_program(dev_config)
