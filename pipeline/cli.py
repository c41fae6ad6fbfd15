"""The ``pipeline`` command: parse, call, print. Every error becomes one line and an exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from pipeline.config.settings import Settings, load_settings
from pipeline.errors import PipelineError

T = TypeVar("T")


@dataclass
class Context:
    outputs: Path | None
    stack: str | None
    debug: bool
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(outputs_file=self.outputs, stack=self.stack)
        return self._settings


def guarded(ctx: Context, action: Callable[[], T]) -> T:
    """Run a command body; a known error prints one line (no traceback unless --debug)."""
    try:
        return action()
    except PipelineError as exc:
        if ctx.debug:
            raise
        click.echo(f"pipeline: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("pipeline: interrupted", err=True)
        sys.exit(130)


@click.group()
@click.option("--stack", "stack", metavar="NAME", help="Read connection details from this Pulumi stack's outputs.")
@click.option(
    "--outputs", "outputs", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False),
    help="Read them from a `pulumi stack output --json --show-secrets` file.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(click_ctx: click.Context, stack: str | None, outputs: Path | None, debug: bool) -> None:
    """Real-time clickstream analytics: Kafka in, session metrics in PostgreSQL and OpenSearch out.

    Without --stack or --outputs the local stack's outputs file (.devstack/stack-outputs.json) is used.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    click_ctx.obj = Context(outputs=outputs, stack=stack, debug=debug)


@main.command()
@click.pass_obj
def check(ctx: Context) -> None:
    """Connect to Kafka, PostgreSQL and OpenSearch with the stack's credentials and report."""
    from pipeline.health import check_all

    def body() -> None:
        settings = ctx.settings()
        click.echo(f"stack outputs: {settings.source}")
        failures = 0
        for result in check_all(settings):
            click.echo(f"  {result.service:<11} {'ok ' if result.ok else 'FAIL'} {result.detail}")
            failures += not result.ok
        if failures:
            raise PipelineError(f"{failures} service(s) unreachable; see the lines above")

    guarded(ctx, body)
