"""The real Pulumi CLI in a sandbox: its own PULUMI_HOME, a file state backend, a passphrase.

The binary is the one ``scripts/pulumi-cli.sh`` builds from the Go module proxy (and
caches per version); nothing here touches the user's own Pulumi state, login or
selected stack. Stacks are created through the Automation API with an inline program,
which runs in this Python process: the CLI drives it over gRPC, so no Python language
host binary is needed (the sandbox's PATH holds the ``pulumi`` binary alone, and
:func:`installed_plugins` shows that nothing was installed).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pulumi
from pulumi import automation as auto

from pipeline.contract.outputs import Output

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "clickstream"  # the name in Pulumi.yaml, so the checkout's project finds the stacks


@cache
def pulumi_binary() -> Path:
    """The CLI ``scripts/pulumi-cli.sh`` built (it builds on the first call of a fresh machine)."""
    done = subprocess.run([str(REPO_ROOT / "scripts" / "pulumi-cli.sh")], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/pulumi-cli.sh failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Sandbox:
    """Environment variables that point the CLI at a private home, backend and passphrase."""

    home: Path
    state: Path
    passphrase: str

    @property
    def backend_url(self) -> str:
        return f"file://{self.state}"

    def env(self, **overrides: str | None) -> dict[str, str]:
        """The process environment for the CLI (and for ``pipeline --stack``); None removes a variable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update(
            {
                "PATH": f"{pulumi_binary().parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "PULUMI_HOME": str(self.home),
                "PULUMI_BACKEND_URL": self.backend_url,
                "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            }
        )
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def cli(
        self, *args: str, cwd: Path, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(pulumi_binary()), *args, "--non-interactive"],
            cwd=cwd,
            env=dict(env or self.env()),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return done


@contextmanager
def sandbox(directory: Path) -> Iterator[Sandbox]:
    """A sandbox under ``directory``; on exit, asserts that the user's own Pulumi home was not touched."""
    home, state = directory / "pulumi-home", directory / "pulumi-state"
    home.mkdir()
    state.mkdir()
    before = _user_pulumi_state()
    yield Sandbox(home, state, secrets.token_urlsafe(16))
    assert _user_pulumi_state() == before, "the user's own Pulumi home (~/.pulumi or $PULUMI_HOME) changed"


def _user_pulumi_state() -> dict[str, float]:
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    if not home.exists():
        return {}
    return {str(p): p.stat().st_mtime for p in home.rglob("*")} | {str(home): home.stat().st_mtime}


@contextmanager
def _process_env(box: Sandbox) -> Iterator[None]:
    """The Automation API runs ``pulumi version`` with this process's environment: point it at the sandbox too."""
    saved = {k: os.environ.get(k) for k in ("PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK")}
    os.environ.update({"PULUMI_HOME": str(box.home), "PULUMI_SKIP_UPDATE_CHECK": "true"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def installed_plugins(box: Sandbox) -> list[Path]:
    """Plugin binaries the CLI installed into the sandbox's home (a language host would show here)."""
    plugins = box.home / "plugins"
    return sorted(p for p in plugins.iterdir()) if plugins.exists() else []


def create_outputs_stack(box: Sandbox, stack: str, outputs: Mapping[str, str]) -> auto.UpResult:
    """A stack of project ``clickstream`` whose outputs are ``outputs``, secret exactly where the contract says."""

    def program() -> None:
        for name in Output:
            value = outputs[name.value]
            pulumi.export(name.value, pulumi.Output.secret(value) if name.secret else value)

    env = box.env()
    with _process_env(box):
        workspace = auto.LocalWorkspaceOptions(
            pulumi_home=str(box.home),
            env_vars={k: v for k, v in env.items() if k.startswith("PULUMI_")},
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(pulumi_binary().parent.parent)),
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=box.backend_url)
            ),
        )
        created = auto.create_stack(stack_name=stack, project_name=PROJECT, program=program, opts=workspace)
        return created.up(on_output=lambda _line: None)
