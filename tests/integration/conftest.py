"""Integration tests run against the local stack that `devstack up` started; they never skip.

If the stack is not up, every test here fails with a message that says so: a green run
must mean the real services were exercised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from devstack.layout import load_layout
from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.ids import private_id
from tests.support.kafka_topics import IsolatedTopics
from tests.support.kafka_topics import isolated_topics as private_topics
from tests.support.world import IsolatedPipeline, isolated_pipeline


@pytest.fixture(scope="session")
def outputs_path() -> Path:
    path = load_layout().outputs_file
    if not path.exists():
        pytest.fail(f"{path} not found: start the local stack with `devstack up` before the integration tests")
    return path


@pytest.fixture(scope="session")
def outputs(outputs_path: Path) -> dict[str, str]:
    return json.loads(outputs_path.read_text())


@pytest.fixture(scope="session")
def settings(outputs: dict[str, str], outputs_path: Path) -> Settings:
    return Settings.from_outputs(outputs, source=str(outputs_path))


@pytest.fixture
def opensearch_admin(settings: Settings) -> Iterator[OpenSearch]:
    """A client of the stack's OpenSearch admin user (set-up, clean-up and reading back what was written)."""
    client = opensearch_client(settings.opensearch, "admin")
    yield client
    client.close()


@pytest.fixture
def isolated_topics(settings: Settings) -> Iterator[IsolatedTopics]:
    """Fresh events and dead-letter topics with the product's ACLs, so tests never see each other's data."""
    with private_topics(settings, private_id()) as topics:
        yield topics


@pytest.fixture
def world(settings: Settings, outputs: dict[str, str], tmp_path: Path) -> Iterator[IsolatedPipeline]:
    """A private pipeline world (topics, group, database, index prefix and user) driven through the CLI."""
    with isolated_pipeline(settings, outputs, tmp_path) as isolated:
        yield isolated
