"""Fixtures for the infra tests; the machinery lives in ``infra_harness``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.infra_harness import PROJECT_ROOT, STACK, ProgramRun, ProgramRunner, load_yaml, stack_config


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
