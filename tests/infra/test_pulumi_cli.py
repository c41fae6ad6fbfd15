"""The real Pulumi CLI (built from the Go module proxy), in a sandbox: what mocks cannot show.

* The README's deploy commands as far as they run offline: ``pulumi stack init dev`` and
  ``pulumi config set`` rewrite Pulumi.dev.yaml (strings everywhere, an encryptionsalt);
  the rewritten file must still load, validate and produce a program Aiven's schema accepts.
* ``pipeline --stack NAME`` failure paths through the real CLI: each is one line, exit 2.

Every CLI call runs in a temporary PULUMI_HOME with a file backend and a passphrase, so
the user's own Pulumi state is never touched; the stack-init test works on a copy of
the project, never on the checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.aiven_schema import SCHEMA_VERSION
from pipeline.contract.outputs import Output
from tests.infra.aiven_api_schema import USER_CONFIGS, service_types, validate_user_config
from tests.infra.infra_harness import (
    PROJECT_ROOT,
    ProgramRunner,
    config_from,
    dev_stack_problems,
    load_yaml,
    stack_config,
)
from tests.support.pulumi_cli import Sandbox, create_outputs_stack, installed_plugins, sandbox

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path) as isolated:
        yield isolated


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in PROJECT_FILES:
        shutil.copy(PROJECT_ROOT / name, copy / name)
    return copy


def test_deploy_commands_rewrite_the_stack_file_and_it_still_validates(box: Sandbox, project_copy: Path) -> None:
    """README "Deploy": stack init, config set (plain and --secret), then the project's own validation."""
    original = (project_copy / "Pulumi.dev.yaml").read_text()
    box.cli("stack", "init", "dev", cwd=project_copy)
    box.cli("config", "set", "clickstream:project", "acme-analytics", cwd=project_copy)
    box.cli("config", "set", "--secret", "aiven:apiToken", "not-a-real-token", cwd=project_copy)
    box.cli("config", "set", "clickstream:namePrefix", "qa", cwd=project_copy)
    box.cli("config", "set", "clickstream:topicPartitions", "12", cwd=project_copy)
    box.cli("config", "set", "clickstream:terminationProtection", "true", cwd=project_copy)

    rewritten_text = (project_copy / "Pulumi.dev.yaml").read_text()
    assert rewritten_text != original, "the CLI did not rewrite the stack file"
    assert "not-a-real-token" not in rewritten_text
    rewritten = load_yaml(project_copy / "Pulumi.dev.yaml")
    assert "encryptionsalt" in rewritten
    assert isinstance(rewritten["config"]["clickstream:topicReplication"], str), "expected the CLI's strings"

    project = load_yaml(project_copy / "Pulumi.yaml")
    assert dev_stack_problems(project, rewritten) == []
    cfg = config_from(stack_config(project, rewritten))
    assert (cfg.project, cfg.name_prefix, cfg.topic_partitions, cfg.topic_replication) == (
        "acme-analytics",
        "qa",
        12,
        2,
    )
    assert cfg.termination_protection is True

    shown = json.loads(box.cli("config", "--json", cwd=project_copy).stdout)
    assert shown["aiven:apiToken"]["secret"] is True
    assert shown["clickstream:project"]["value"] == "acme-analytics"

    schema = service_types(SCHEMA_VERSION)
    run = ProgramRunner()(stack_config(project, rewritten))
    for token, (service, key) in USER_CONFIGS.items():
        (resource,) = run.of_type(token)
        assert validate_user_config(schema, service, resource.inputs[key]).problems == []
    assert (PROJECT_ROOT / "Pulumi.dev.yaml").read_text() == original, "the checkout's file changed"


def dummy_outputs() -> dict[str, str]:
    values = {o.value: f"value-of-{o.value}" for o in Output}
    values[Output.POSTGRES_TIMESCALEDB.value] = "false"
    return values


def pipeline_check(env: dict[str, str], stack: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--stack", stack, "check"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "value-of-" not in done.stderr + done.stdout  # no output value, secret or not, is ever shown
    return lines[0]


def cli_error_line(box: Sandbox, env: dict[str, str], stack: str) -> str:
    """What the CLI itself says, to check that the pipeline quotes it whole (not cut mid-word)."""
    done = box.cli(
        "stack", "output", "--json", "--show-secrets", "--stack", stack, cwd=PROJECT_ROOT, env=env, check=False
    )
    assert done.returncode != 0
    line = next(x for x in done.stderr.splitlines() if x.startswith("error:"))
    return " ".join(line[len("error:") :].split())


def test_reading_a_stack_needs_its_passphrase(box: Sandbox) -> None:
    create_outputs_stack(box, "qa", dummy_outputs())
    assert installed_plugins(box) == []
    for env in (box.env(PULUMI_CONFIG_PASSPHRASE=None), box.env(PULUMI_CONFIG_PASSPHRASE="not-the-passphrase")):
        line = assert_one_line(pipeline_check(env, "qa"), "Pulumi stack 'qa'", "PULUMI_CONFIG_PASSPHRASE")
        assert cli_error_line(box, env, "qa") in line


def test_an_unknown_stack_is_one_line(box: Sandbox) -> None:
    env = box.env()
    line = assert_one_line(pipeline_check(env, "nope"), "'nope'", "pulumi stack ls")
    assert cli_error_line(box, env, "nope") in line


def test_not_logged_in_is_one_line(box: Sandbox) -> None:
    env = box.env(PULUMI_BACKEND_URL=None, PULUMI_ACCESS_TOKEN=None)
    line = assert_one_line(pipeline_check(env, "dev"), "pulumi login")
    assert cli_error_line(box, env, "dev") in line


def test_no_cli_is_one_line(box: Sandbox) -> None:
    env = box.env(PATH=str(Path(sys.executable).parent))
    assert_one_line(pipeline_check(env, "dev"), "needs the Pulumi CLI on PATH")


def test_the_sandbox_reads_a_good_stack(box: Sandbox) -> None:
    """Guards the failure tests above: with the right passphrase the same stack reads fine."""
    outputs = dummy_outputs()
    create_outputs_stack(box, "qa", outputs)
    done = box.cli("stack", "output", "--json", "--show-secrets", "--stack", "qa", cwd=PROJECT_ROOT)
    assert json.loads(done.stdout) == outputs
    shown = json.loads(box.cli("stack", "output", "--json", "--stack", "qa", cwd=PROJECT_ROOT).stdout)
    assert {k for k, v in shown.items() if v == "[secret]"} == {o.value for o in Output if o.secret}
