"""No command ever prints a credential, and the application role cannot change the schema or history.

Every command of a normal session (and a failing one) runs through the CLI on a private
pipeline world, with and without --debug; everything it wrote to stdout and stderr is
searched for each secret of the stack outputs: private keys (whole PEM, base64 body, any
40-character slice of it), passwords parsed from the URIs, and the credential-bearing URIs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import errors

from pipeline.contract.outputs import SECRET_OUTPUTS
from tests.support.terminal import on_terminal
from tests.support.world import IsolatedPipeline


def secret_needles(values: dict[str, str]) -> dict[str, str]:
    """Every string whose appearance in output would leak a secret, mapped to a label naming (not showing) it."""
    needles: dict[str, str] = {}
    secret_names = {o.value for o in SECRET_OUTPUTS}
    for name, value in values.items():
        if not value:
            continue
        if "PRIVATE KEY" in value:
            needles[value.strip()] = f"{name} (whole PEM)"
            body = "".join(line for line in value.splitlines() if line and not line.startswith("-----"))
            needles[body] = f"{name} (base64 body)"
            needles.update({body[i : i + 40]: f"{name} (40 characters at {i})" for i in range(len(body) - 39)})
        elif "://" in value:
            parts = urlsplit(value)
            if parts.password:
                needles.update(
                    {
                        value: f"{name} (URI)",
                        value.split("?")[0]: f"{name} (URI)",
                        parts.password: f"{name} (password)",
                        unquote(parts.password): f"{name} (password)",
                    }
                )
        elif name in secret_names:
            needles[value] = name
    return {n: label for n, label in needles.items() if len(n) >= 8}


def leaks(text: str, needles: dict[str, str]) -> list[str]:
    squeezed = re.sub(r"\s+", "", text)
    return sorted({label for n, label in needles.items() if n in text or n in squeezed})


def test_no_command_prints_a_secret(world: IsolatedPipeline, tmp_path: Path) -> None:
    values = json.loads(world.outputs_file.read_text())
    needles = secret_needles(values)
    assert sum("PRIVATE KEY" in v for v in values.values()) == 3 and len(needles) > 100, "found too few secrets"

    wrong = dict(values)
    for key in ("postgres_app_uri", "postgres_admin_uri"):
        wrong[key] = re.sub(r"^(\w+://[^:/@]+):[^@]+@", r"\1:not-the-password@", values[key])
    wrong_file = tmp_path / "wrong-password.json"
    wrong_file.write_text(json.dumps(wrong))

    outputs: list[str] = []
    for debug in ((), ("--debug",)):
        dump = tmp_path / f"sent{len(debug)}.jsonl"
        runs = [
            _pipeline(*debug, "--outputs", str(world.outputs_file), *args)
            for args in (
                ("schema", "--index-prefix", world.index_prefix),
                ("produce", "--events", "500", "--malformed-rate", "0.02", "--dump", str(dump)),
                ("consume", "--drain", "--index-prefix", world.index_prefix),
                ("summary",),
                ("summary", "--json"),
                ("check",),
                ("status", "--index-prefix", world.index_prefix),
                ("status", "--json", "--index-prefix", world.index_prefix),
                ("dead-letters",),
                ("dead-letters", "--json"),
                ("dead-letters", "--replay", "all", "--limit", "2"),
                ("--json-logs", "consume", "--drain", "--index-prefix", world.index_prefix),
                (
                    "--json-logs",
                    "run",
                    "--events",
                    "300",
                    "--index-prefix",
                    world.index_prefix,
                    "--report",
                    str(tmp_path / f"run{len(debug)}.html"),
                ),
                ("report", "--html", str(tmp_path / f"report{len(debug)}.html")),
                ("dashboards", "--export", str(tmp_path / f"objects{len(debug)}.ndjson")),
            )
        ]
        live = _pipeline_on_terminal(
            *debug,
            "--outputs",
            str(world.outputs_file),
            "run",
            "--events",
            "2000",
            "--index-prefix",
            world.index_prefix,
            "--report",
            str(tmp_path / "live.html"),
        )
        assert "consume" in live and "report:" in live, live[-2000:]
        outputs.append(live)
        assert all(r.returncode == 0 for r in runs), [r.stderr[-1500:] for r in runs if r.returncode]
        failing = _pipeline(
            *debug, "--outputs", str(wrong_file), "consume", "--drain", "--index-prefix", world.index_prefix
        )
        failing_check = _pipeline(*debug, "--outputs", str(wrong_file), "check")
        assert failing.returncode != 0 and failing_check.returncode != 0
        assert "password authentication failed" in failing.stderr + failing.stdout
        runs += [failing, failing_check]
        outputs += [r.stdout + r.stderr for r in runs]

    everything = "\n".join(outputs)
    assert "Traceback" in everything, "--debug did not show the failing command's traceback"
    assert "sessions" in everything and "PostgreSQL" in everything
    assert "total lag" in everything and "dlq.reason" in everything and '"progress"' in everything
    found = leaks(everything, needles)
    assert not found, f"secrets printed: {found}"


def _pipeline_on_terminal(*args: str) -> str:
    """Everything a command shows on a terminal (a pseudo-terminal: the live progress display is on)."""
    code, screen = on_terminal([sys.executable, "-m", "pipeline", *args])
    assert code == 0, screen[-2000:]
    return screen


def _pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_application_role_cannot_change_the_schema_or_rewrite_events(world: IsolatedPipeline) -> None:
    world.cli("schema")
    world.cli("produce", "--events", "200")
    world.cli("consume", "--drain")

    def refused(statement: str) -> None:
        with psycopg.connect(world.settings.postgres.conninfo("app"), autocommit=True) as conn:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)

    refused("CREATE TABLE intruder (id int)")
    refused("CREATE SCHEMA intruder")
    refused("DROP TABLE events")
    refused("DROP TABLE sessions")
    refused("ALTER TABLE events ADD COLUMN intruder int")
    refused("TRUNCATE events")
    refused("UPDATE events SET user_id = 'x'")
    refused("DELETE FROM events")
    refused("DELETE FROM sessions")
    with psycopg.connect(world.settings.postgres.conninfo("app")) as conn:
        count = conn.execute("SELECT count(*) FROM events").fetchone()
        assert count is not None and count[0] > 0, "the role lost the right to read what it needs"
        privileges = conn.execute(
            "SELECT has_table_privilege('events', 'UPDATE'), has_table_privilege('events', 'DELETE')"
        ).fetchone()
    assert privileges == (False, False)
