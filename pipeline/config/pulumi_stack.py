"""Read a Pulumi stack's outputs through the Pulumi CLI, without changing anything.

``pulumi stack output --json --show-secrets --stack NAME`` run in the project directory
names the stack explicitly, so the user's selected stack stays as it was and no
``Pulumi.NAME.yaml`` is written into the checkout (``select_stack`` of the Automation API
does both). The CLI's own error (unknown stack, missing or wrong passphrase, no login)
becomes one line that says what to do, and never carries an output value.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from pipeline.errors import ConfigError

#: The longest CLI message quoted in an error line; longer ones are cut at a word boundary.
MAX_DETAIL = 240
CLI_TIMEOUT_S = 120

#: (words in the CLI's message, what to do about it); the first that matches wins.
_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("no stack named",), "list the stacks with `pulumi stack ls`"),
    (("passphrase",), "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the stack's passphrase"),
    (
        ("pulumi_access_token", "login", "logged in"),
        "log in to the stack's backend with `pulumi login` (or set PULUMI_BACKEND_URL)",
    ),
)


def bounded(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words (inside one only if it is the first)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return f"{cut}…"


def cli_error(stack: str, stderr: str) -> ConfigError:
    """One line for a failed ``pulumi stack output``: the CLI's own ``error:`` line and the fix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = next((line for line in lines if line.lower().startswith("error:")), lines[-1] if lines else "")
    detail = detail[len("error:") :].strip() if detail.lower().startswith("error:") else detail
    advice = next((fix for words, fix in _ADVICE if any(w in detail.lower() for w in words)), "")
    text = f"reading Pulumi stack {stack!r} failed: {bounded(detail) or 'the Pulumi CLI gave no reason'}"
    return ConfigError(f"{text}; {advice}" if advice else text)


def read_stack_outputs(stack: str, work_dir: Path) -> dict[str, object]:
    """The stack's outputs, secrets in clear, as ``pulumi stack output --json --show-secrets`` prints them."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise ConfigError(
            "--stack needs the Pulumi CLI on PATH (https://www.pulumi.com/docs/install/); "
            "or export the outputs with `pulumi stack output --json --show-secrets > outputs.json` "
            "and pass --outputs outputs.json"
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--non-interactive", "--stack", stack]
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    try:
        done = subprocess.run(
            command,
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"reading Pulumi stack {stack!r} took longer than {CLI_TIMEOUT_S} s; "
            "check the state backend (`pulumi whoami -v`)"
        ) from None
    if done.returncode != 0:
        raise cli_error(stack, done.stderr)
    try:
        outputs = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ConfigError(
            f"the Pulumi CLI printed no JSON for stack {stack!r}; check `pulumi stack output --stack NAME` by hand"
        ) from None
    if not isinstance(outputs, dict):
        raise ConfigError(f"Pulumi stack {stack!r} outputs are not a JSON object")
    return outputs
