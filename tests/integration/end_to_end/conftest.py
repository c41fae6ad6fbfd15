"""End-to-end fixtures: a private pipeline world per test, driven through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config.settings import Settings
from tests.support.isolated_pipeline import IsolatedPipeline, isolated_pipeline


@pytest.fixture
def world(settings: Settings, outputs: dict[str, str], tmp_path: Path) -> Iterator[IsolatedPipeline]:
    with isolated_pipeline(settings, outputs, tmp_path) as isolated:
        yield isolated
