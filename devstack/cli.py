"""``devstack up | down | reset | status``: the local stack in one command."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Callable

import click

from devstack import certs, kafka, opensearch, outputs, postgres, proc
from devstack.errors import DevstackError
from devstack.layout import Layout, load_layout


def _step(name: str, action: Callable[[], object]) -> None:
    started = time.monotonic()
    click.echo(f"devstack: {name} ...", nl=False)
    action()
    click.echo(f" ready ({time.monotonic() - started:.1f} s)")


def _up(layout: Layout) -> None:
    proc.require_tool("openssl", "install it with: sudo apt-get install openssl")
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    layout.state_dir.chmod(0o700)
    layout.runtime_dir.mkdir(parents=True, exist_ok=True)
    layout.dist_dir.mkdir(parents=True, exist_ok=True)
    proc.ensure_service_user(layout)
    ca = certs.ensure_ca(layout.certs_dir)
    _forget_stale_runtime(layout, ca)
    _step("PostgreSQL", lambda: postgres.up(layout, ca))
    _step("Kafka", lambda: kafka.up(layout, ca))
    _step("OpenSearch", lambda: opensearch.up(layout, ca))
    path = outputs.write(layout, ca)
    click.echo(f"devstack: stack outputs written to {path}")


def _forget_stale_runtime(layout: Layout, ca: certs.CertPair) -> None:
    """Wipe service data that was made for another CA and other passwords.

    The runtime directory outlives the state directory (it is under /var/lib when run as
    root); if the state directory was deleted, the old data would hold certificates and
    passwords nobody has any more.
    """
    marker = layout.runtime_dir / "stack-ca.sha256"
    fingerprint = hashlib.sha256(ca.cert.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() != fingerprint:
        if postgres.is_running(layout) or kafka.is_running(layout) or opensearch.is_running(layout):
            raise DevstackError(
                f"services from an earlier stack are still running from {layout.runtime_dir}; stop them first"
            )
        click.echo(f"devstack: wiping data of an earlier stack in {layout.runtime_dir}")
        shutil.rmtree(layout.runtime_dir)
        layout.runtime_dir.mkdir(parents=True)
    marker.write_text(fingerprint + "\n")


def _down(layout: Layout) -> None:
    for name, stop in (("OpenSearch", opensearch.down), ("Kafka", kafka.down), ("PostgreSQL", postgres.down)):
        click.echo(f"devstack: stopping {name}")
        stop(layout)


@click.group()
def main() -> None:
    """Run the pipeline's real services (Kafka, PostgreSQL, OpenSearch) on this machine."""


def _run(action: Callable[[Layout], None]) -> None:
    try:
        action(load_layout())
    except DevstackError as exc:
        click.echo(f"devstack: error: {exc}", err=True)
        sys.exit(1)


@main.command()
def up() -> None:
    """Install what is missing, start every service, wait until each answers, write the outputs file."""
    _run(_up)


@main.command()
def down() -> None:
    """Stop every service, keeping its data."""
    _run(_down)


_SERVICES: dict[str, Callable[[Layout], None]] = {
    "postgres": postgres.down,
    "kafka": kafka.down,
    "opensearch": opensearch.down,
}


@main.command()
@click.argument("service", type=click.Choice(sorted(_SERVICES)))
def stop(service: str) -> None:
    """Stop one service, keeping its data (fault-injection tests use it); `up` starts it again."""
    _run(lambda layout: _SERVICES[service](layout))


@main.command()
def reset() -> None:
    """Stop every service and wipe its data, certificates and passwords."""

    def _reset(layout: Layout) -> None:
        _down(layout)
        shutil.rmtree(layout.runtime_dir, ignore_errors=True)
        shutil.rmtree(layout.state_dir, ignore_errors=True)
        click.echo("devstack: data wiped")

    _run(_reset)


@main.command()
def status() -> None:
    """Say which services are running and where the outputs file is."""

    def _status(layout: Layout) -> None:
        for name, fn in (("PostgreSQL", postgres.status), ("Kafka", kafka.status), ("OpenSearch", opensearch.status)):
            click.echo(f"{name:<11} {fn(layout)}")
        click.echo(f"outputs     {layout.outputs_file if layout.outputs_file.exists() else '(not written yet)'}")

    _run(_status)


@main.command("outputs-path")
def outputs_path() -> None:
    """Print the path of the stack-outputs file (for scripts)."""
    _run(lambda layout: click.echo(str(layout.outputs_file)))
