"""``pipeline --stack NAME`` through the real Pulumi CLI, end to end against the local stack.

A throwaway stack of project ``clickstream`` (file backend, passphrase secrets, private
PULUMI_HOME) is created by the Automation API with an inline program exporting a
private world's outputs with the contract's secrecy. The pipeline then reads it exactly
as a user's ``pulumi up`` stack: ``pulumi stack output --json --show-secrets``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.contract.outputs import Output
from tests.support.kafka_topics import read_all
from tests.support.pulumi_cli import REPO_ROOT, Sandbox, create_outputs_stack, installed_plugins, sandbox
from tests.support.sink_contents import assert_opensearch_matches, assert_postgres_matches, dumped
from tests.support.truth import unique_events
from tests.support.world import IsolatedPipeline

FAULTY = ["--duplicate-rate", "0.03", "--late-rate", "0.03", "--max-lateness", "20", "--malformed-rate", "0.01"]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path) as isolated:
        yield isolated


def pipeline_with_stack(
    box: Sandbox, stack: str, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--stack", stack, *args],
        cwd=cwd,
        env={**(env or box.env()), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def checkout_state(box: Sandbox) -> tuple[str, str]:
    """What --stack must leave alone: the checkout's files (tracked and not) and the selected stack."""
    files = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    selected = box.cli("stack", "--show-name", cwd=REPO_ROOT, check=False)
    return files, selected.stdout.strip() + selected.stderr.strip()


def test_run_against_a_pulumi_stack_is_exact_and_changes_nothing(
    world: IsolatedPipeline, box: Sandbox, tmp_path: Path
) -> None:
    outputs = json.loads(world.outputs_file.read_text())
    up = create_outputs_stack(box, "e2e", outputs)
    assert set(up.outputs) == {o.value for o in Output}
    assert {name for name, value in up.outputs.items() if value.secret} == {o.value for o in Output if o.secret}
    assert installed_plugins(box) == [], "the inline program needed a plugin (a language host?)"
    create_outputs_stack(box, "other", outputs)
    box.cli("stack", "select", "other", cwd=REPO_ROOT)
    before = checkout_state(box)

    dump = tmp_path / "sent.jsonl"
    done = pipeline_with_stack(
        box,
        "e2e",
        "run",
        "--events",
        "8000",
        "--seed",
        "21",
        "--window-hours",
        "6",
        *FAULTY,
        "--dump",
        str(dump),
        "--index-prefix",
        world.index_prefix,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    event_values, malformed = dumped(dump)
    assert malformed and len(event_values) > len(unique_events(event_values)), "the stream had no faults to survive"
    sessions = assert_postgres_matches(world, event_values)
    assert_opensearch_matches(world, set(unique_events(event_values)), sessions)
    letters = read_all(world.settings, world.topics.dead_letter)
    assert Counter(m.value() for m in letters) == Counter(malformed)

    after = checkout_state(box)
    assert after == before, "pipeline --stack changed the checkout or the selected stack"
    assert before[1] == "other"
    assert not (REPO_ROOT / "Pulumi.e2e.yaml").exists()
