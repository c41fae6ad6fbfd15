"""A wrong configuration is reported by the CLI as one line on stderr and a non-zero exit, fast.

Each case runs the real ``pipeline`` command in a subprocess against the local stack with
one thing wrong. The failures of ``--stack`` that need the real Pulumi CLI (unknown
stack, passphrase, login) are in tests/infra/test_pulumi_cli.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.certs import CertPair, ensure_ca, issue_certificate, issue_expired_certificate
from devstack.layout import load_layout

TIMEOUT = 60


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_many([args], env=env)[0]


def run_many(
    commands: list[tuple[str, ...]], env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``pipeline`` commands at once (each bounded by TIMEOUT): the slow cases wait in parallel."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or dict(os.environ),
        )
        for args in commands
    ]
    results = []
    for args, proc in zip(commands, procs, strict=True):
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise AssertionError(f"pipeline {' '.join(args)} hung for {TIMEOUT} s") from None
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *, mentions: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, f"exit 0; stderr: {result.stderr[-2000:]}"
    assert len(lines) == 1, f"{len(lines)} stderr lines: {result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr + result.stdout
    assert re.search(mentions, lines[0], re.IGNORECASE), lines[0]


def assert_every_command_refused(
    path: Path, commands: list[tuple[str, ...]], *, service: str, check_says: str, others_say: str
) -> list[subprocess.CompletedProcess[str]]:
    """``check`` lists ``service`` as FAIL and ends with one summary line; every other command exits 3 in one line."""
    check, *others = run_many([("--outputs", str(path), *command) for command in commands])
    assert_one_line_failure(check, mentions=r"unreachable")
    assert re.search(rf"{service}\s+FAIL{check_says}", check.stdout), check.stdout
    for result in others:
        assert_one_line_failure(result, mentions=others_say)
        assert result.returncode == 3
    return [check, *others]


def write_outputs(tmp_path: Path, values: dict[str, str], name: str = "outputs.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return path


COMMANDS = [("check",), ("consume", "--drain"), ("produce", "--events", "10")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_missing_outputs_file(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = run_cli("--outputs", str(tmp_path / "nope.json"), *command)
    assert_one_line_failure(result, mentions=r"nope\.json not found")
    assert result.returncode == 2


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_malformed_json(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "outputs.json"
    path.write_text('{"kafka_bootstrap_servers": "x",')
    result = run_cli("--outputs", str(path), *command)
    assert_one_line_failure(result, mentions=r"not valid JSON")
    assert result.returncode == 2


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_missing_output_name(tmp_path: Path, outputs: dict[str, str], command: tuple[str, ...]) -> None:
    values = {k: v for k, v in outputs.items() if k != "kafka_consumer_group"}
    result = run_cli("--outputs", str(write_outputs(tmp_path, values)), *command)
    assert_one_line_failure(result, mentions=r"lacks stack output\(s\) kafka_consumer_group")
    assert result.returncode == 2


def test_unreachable_kafka(tmp_path: Path, outputs: dict[str, str]) -> None:
    values = outputs | {"kafka_bootstrap_servers": "127.0.0.1:1"}
    assert_every_command_refused(
        write_outputs(tmp_path, values),
        COMMANDS,
        service="Kafka",
        check_says="",
        others_say=r"Kafka 127\.0\.0\.1:1 not reachable",
    )


def _postgres_uris(outputs: dict[str, str], change) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return outputs | {k: change(outputs[k]) for k in ("postgres_app_uri", "postgres_admin_uri")}


@pytest.mark.parametrize("command", COMMANDS[:2], ids=lambda c: c[0])
def test_unreachable_postgres(tmp_path: Path, outputs: dict[str, str], command: tuple[str, ...]) -> None:
    values = _postgres_uris(outputs, lambda uri: re.sub(r"@[^/@]+/", "@127.0.0.1:1/", uri))
    result = run_cli("--outputs", str(write_outputs(tmp_path, values)), *command)
    assert_one_line_failure(result, mentions=r"unreachable|PostgreSQL")
    if command[0] == "check":
        assert re.search(r"PostgreSQL\s+FAIL", result.stdout), result.stdout
    else:
        assert result.returncode == 3 and "port 1 failed" in result.stderr


@pytest.mark.parametrize("command", COMMANDS[:2], ids=lambda c: c[0])
def test_wrong_postgres_password(tmp_path: Path, outputs: dict[str, str], command: tuple[str, ...]) -> None:
    values = _postgres_uris(outputs, lambda uri: re.sub(r"^(\w+://[^:/@]+):[^@]+@", r"\1:not-the-password@", uri))
    assert values["postgres_app_uri"] != outputs["postgres_app_uri"]
    result = run_cli("--outputs", str(write_outputs(tmp_path, values)), *command)
    assert_one_line_failure(result, mentions=r"unreachable|password authentication failed")
    if command[0] == "check":
        assert re.search(r"PostgreSQL\s+FAIL .*password authentication failed", result.stdout), result.stdout
    else:
        assert result.returncode == 3
    assert "not-the-password" not in result.stdout + result.stderr


def test_client_certificate_from_another_ca(tmp_path: Path, outputs: dict[str, str]) -> None:
    other_ca = ensure_ca(tmp_path / "other-ca")
    assert_kafka_refuses_certificates(
        tmp_path, outputs, lambda pair, name: issue_certificate(other_ca, pair, common_name=name)
    )


def assert_kafka_refuses_certificates(
    tmp_path: Path, outputs: dict[str, str], issue: Callable[[CertPair, str], None]
) -> None:
    """Replace every Kafka client certificate with one from ``issue``: each command fails in one line."""
    values = dict(outputs)
    for role in ("admin", "producer", "consumer"):
        pair = CertPair(tmp_path / f"{role}.pem", tmp_path / f"{role}.key")
        issue(pair, f"clickstream-{role}")
        values[f"kafka_{role}_access_cert"] = pair.cert_pem()
        values[f"kafka_{role}_access_key"] = pair.key_pem()
    assert_every_command_refused(
        write_outputs(tmp_path, values),
        COMMANDS,
        service="Kafka",
        check_says="",
        others_say=r"not reachable with the (consumer|producer) certificate",
    )


def test_stack_without_pulumi_cli(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ) | {"PATH": str(bin_dir)}
    for command in COMMANDS:
        result = run_cli("--stack", "no-such-stack", *command, env=env)
        assert_one_line_failure(result, mentions=r"needs the Pulumi CLI")
        assert result.returncode == 2


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "--outputs", str(tmp_path / "nope.json"), "check")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_expired_client_certificate(tmp_path: Path, outputs: dict[str, str]) -> None:
    stack_ca = CertPair(load_layout().certs_dir / "ca.pem", load_layout().certs_dir / "ca.key")
    probe = CertPair(tmp_path / "probe.pem", tmp_path / "probe.key")
    issue_expired_certificate(stack_ca, probe, common_name="probe")
    # Signed by the stack's own CA, so expiry is the only thing wrong with it.
    verdict = subprocess.run(
        ["openssl", "verify", "-CAfile", str(stack_ca.cert), str(probe.cert)], capture_output=True, text=True
    )
    assert verdict.returncode != 0 and "certificate has expired" in verdict.stdout + verdict.stderr
    assert_kafka_refuses_certificates(
        tmp_path, outputs, lambda pair, name: issue_expired_certificate(stack_ca, pair, common_name=name)
    )


CONSUMING = [("check",), ("consume", "--drain"), ("run", "--events", "10")]


def test_wrong_opensearch_password(tmp_path: Path, outputs: dict[str, str]) -> None:
    uri = outputs["opensearch_uri"]
    wrong = re.sub(r"^(https://[^:/@]+):[^@]+@", r"\1:not-the-password@", uri)
    assert wrong != uri
    results = assert_every_command_refused(
        write_outputs(tmp_path, outputs | {"opensearch_uri": wrong}),
        CONSUMING,
        service="OpenSearch",
        check_says=r" .*refused the pipeline user's credentials \(HTTP 401\)",
        others_say=r"OpenSearch .* refused the pipeline user's credentials",
    )
    for result in results:
        assert "not-the-password" not in result.stdout + result.stderr


def test_opensearch_certificate_from_an_untrusted_ca(tmp_path: Path, outputs: dict[str, str]) -> None:
    """With another CA in opensearch_ca_cert, the node's certificate must not be accepted."""
    other_ca = ensure_ca(tmp_path / "other-ca")
    assert_every_command_refused(
        write_outputs(tmp_path, outputs | {"opensearch_ca_cert": other_ca.cert_pem()}),
        CONSUMING,
        service="OpenSearch",
        check_says=r" .*TLS certificate not trusted",
        others_say=r"OpenSearch .*TLS certificate not trusted .*opensearch_ca_cert",
    )
