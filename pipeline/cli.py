"""The ``pipeline`` command: parse, call, print. Every error becomes one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pipeline.config.settings import Settings, load_settings
from pipeline.errors import ConfigError, PipelineError, ServiceError
from pipeline.jobs.consume_defaults import BATCH_SIZE, IN_FLIGHT, MAX_BATCH_SIZE, MAX_IN_FLIGHT
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL, check_refresh_interval

if TYPE_CHECKING:
    from pipeline.jobs.produce import ProduceOptions

T = TypeVar("T")

DEFAULT_REPORT = Path("clickstream-report.html")


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


def source_options(fn: Callable[..., T]) -> Callable[..., T]:
    """Accept --stack/--outputs after the subcommand too (``pipeline run --stack dev``)."""

    def remember(click_ctx: click.Context, param: click.Parameter, value: object) -> object:
        if value is not None:
            ctx: Context = click_ctx.find_object(Context)  # type: ignore[assignment]
            setattr(ctx, param.name or "", value)
        return value

    fn = click.option(
        "--stack",
        metavar="NAME",
        expose_value=False,
        callback=remember,
        help="Read connection details from this Pulumi stack's outputs.",
    )(fn)
    fn = click.option(
        "--outputs",
        metavar="FILE",
        expose_value=False,
        callback=remember,
        type=click.Path(path_type=Path, dir_okay=False),
        help="Read them from a `pulumi stack output --json --show-secrets` file.",
    )(fn)
    return fn


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
    "--outputs",
    "outputs",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read them from a `pulumi stack output --json --show-secrets` file.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--json-logs", is_flag=True, help="Log one JSON object a line (progress included); no live display.")
@click.option("--quiet", "-q", is_flag=True, help="Log only warnings and errors; no progress.")
@click.pass_context
def main(
    click_ctx: click.Context, stack: str | None, outputs: Path | None, debug: bool, json_logs: bool, quiet: bool
) -> None:
    """Real-time clickstream analytics: Kafka in, session metrics in PostgreSQL and OpenSearch out.

    Without --stack or --outputs the local stack's outputs file (.devstack/stack-outputs.json) is used.
    On a terminal, produce, consume and run show a live progress display; otherwise (or with
    --json-logs / --quiet) they log progress lines every few seconds (or not at all).
    """
    from pipeline.jobs.progress import configure

    configure(json_logs=json_logs, quiet=quiet, debug=debug)
    click_ctx.obj = Context(outputs=outputs, stack=stack, debug=debug)


@main.command()
@source_options
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


def _index_prefix_option(fn: Callable[..., T]) -> Callable[..., T]:
    return click.option(
        "--index-prefix",
        default="clickstream",
        show_default=True,
        metavar="PREFIX",
        help="OpenSearch indices are PREFIX-events and PREFIX-sessions.",
    )(fn)


def _refresh_interval(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_refresh_interval(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@_index_prefix_option
@click.option(
    "--refresh-interval",
    default=DEFAULT_REFRESH_INTERVAL,
    show_default=True,
    callback=_refresh_interval,
    help="How soon OpenSearch makes writes searchable; longer costs it less CPU per document.",
)
@source_options
@click.pass_obj
def schema(ctx: Context, index_prefix: str, refresh_interval: str) -> None:
    """Apply PostgreSQL migrations (admin role) and OpenSearch index templates. Re-running is a no-op."""
    from pipeline.jobs.setup import prepare_sinks

    def body() -> None:
        report = prepare_sinks(ctx.settings(), index_prefix=index_prefix, refresh_interval=refresh_interval)
        click.echo(report)

    guarded(ctx, body)


@main.command()
@click.option(
    "--export",
    "export_to",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the saved objects as NDJSON (for a manual import) instead of importing them.",
)
@_index_prefix_option
@source_options
@click.pass_obj
def dashboards(ctx: Context, export_to: Path | None, index_prefix: str) -> None:
    """Import the "Clickstream" dashboard, its visualizations and index patterns into the stack's
    OpenSearch Dashboards (overwriting the same objects: safe to repeat)."""
    from pipeline.dashboards.ndjson import dumps
    from pipeline.dashboards.saved_objects import build
    from pipeline.jobs.setup import import_dashboards

    def body() -> None:
        if export_to is not None:
            objects = build(index_prefix)
            export_to.write_bytes(dumps(objects))
            click.echo(f"dashboards: {len(objects)} saved objects written to {export_to}")
            return
        settings = ctx.settings()
        if not settings.opensearch.dashboards_uri:
            raise ConfigError(
                f"{settings.source} has no OpenSearch Dashboards (opensearch_dashboards_uri is "
                "empty; the local stack has none); use --export FILE to write the saved objects"
            )
        click.echo(f"dashboards: {import_dashboards(settings, index_prefix=index_prefix).line()}")

    guarded(ctx, body)


@main.command()
@click.option("--group", metavar="ID", help="Consumer group (default: the stack's kafka_consumer_group).")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, MAX_BATCH_SIZE))
@click.option("--drain", is_flag=True, help="Exit once the group has committed everything in the topic.")
@click.option("--idle-exit", type=float, metavar="S", help="Exit after S seconds without a message.")
@click.option("--stats-json", type=click.Path(path_type=Path, dir_okay=False), help="Write final counters here.")
@click.option(
    "--session-timeout-ms",
    type=click.IntRange(6_000, 300_000),
    metavar="MS",
    help="Classic group protocol only: session timeout (default 45000), after which a crashed "
    "member's partitions move. Under KIP-848 it is the group's setting on the broker.",
)
@click.option(
    "--group-protocol",
    type=click.Choice(["auto", "consumer", "classic"]),
    default="auto",
    show_default=True,
    help="Consumer group protocol: consumer (KIP-848), classic, or auto "
    "(KIP-848 where the broker offers it, else classic).",
)
@click.option(
    "--in-flight",
    default=IN_FLIGHT,
    show_default=True,
    type=click.IntRange(1, MAX_IN_FLIGHT),
    metavar="K",
    help="Batches written at once, each with its own PostgreSQL connection and OpenSearch client "
    "(hides round trips when the services are far away); offsets are still committed in reading order.",
)
@_index_prefix_option
@source_options
@click.pass_obj
def consume(
    ctx: Context,
    group: str | None,
    batch_size: int,
    drain: bool,
    idle_exit: float | None,
    stats_json: Path | None,
    session_timeout_ms: int | None,
    group_protocol: str,
    in_flight: int,
    index_prefix: str,
) -> None:
    """Consume events into PostgreSQL and OpenSearch until stopped (SIGINT/SIGTERM finish the batches in hand)."""
    import json
    import threading

    from pipeline.jobs.consume import ConsumeLoop, ConsumeOptions, install_signal_handlers
    from pipeline.jobs.consume_view import consumer_view

    def body() -> None:
        from pipeline.health import require_consumer_services

        settings = ctx.settings()
        require_consumer_services(settings)
        options = ConsumeOptions(
            topic=settings.kafka.events_topic,
            dead_letter_topic=settings.kafka.dead_letter_topic,
            group=group or settings.kafka.consumer_group,
            batch_size=batch_size,
            drain=drain,
            idle_exit_s=idle_exit,
            index_prefix=index_prefix,
            session_timeout_ms=session_timeout_ms,
            group_protocol=group_protocol,  # type: ignore[arg-type]
            in_flight=in_flight,
        )
        stop = threading.Event()
        install_signal_handlers(stop)
        with consumer_view(settings, options, until_caught_up=drain) as (viewed, on_batch):
            stats = ConsumeLoop(settings, viewed, stop=stop, on_batch=on_batch).run()
        if stats_json is not None:
            stats_json.write_text(json.dumps(stats.to_dict(), indent=2))

    guarded(ctx, body)


@main.command()
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 90))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@source_options
@click.pass_obj
def summary(ctx: Context, hours: int, as_json: bool) -> None:
    """KPIs, top pages, the purchase funnel and the last hours, read from PostgreSQL."""
    from pipeline.analytics.report import render_summary
    from pipeline.analytics.summary import summary as read_summary

    def body() -> None:
        result = read_summary(ctx.settings(), hours=hours)
        if as_json:
            import json

            click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        else:
            click.echo(render_summary(result))

    guarded(ctx, body)


@main.command()
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    default=DEFAULT_REPORT,
    show_default=True,
    help="Where to write the report.",
)
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 90))
@source_options
@click.pass_obj
def report(ctx: Context, html_file: Path, hours: int) -> None:
    """Write the summary as one self-contained HTML file with charts (opens without network access)."""
    from pipeline.jobs.report import write_report

    def body() -> None:
        click.echo(f"report: {write_report(ctx.settings(), html_file, hours=hours)}")

    guarded(ctx, body)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--group", metavar="ID", help="Consumer group (default: the stack's kafka_consumer_group).")
@_index_prefix_option
@source_options
@click.pass_obj
def status(ctx: Context, as_json: bool, group: str | None, index_prefix: str) -> None:
    """The consumer group (members, partitions, committed offsets, lag), the dead-letter count, and
    the newest event in PostgreSQL and OpenSearch. Exits 3 if a part could not be read."""
    from pipeline.ops.status import read_status, render_status

    def body() -> None:
        result = read_status(ctx.settings(), index_prefix=index_prefix, group=group)
        if as_json:
            import json

            click.echo(json.dumps(result.to_dict(), indent=2))
        else:
            click.echo(render_status(result))
        if result.errors:
            raise ServiceError(f"{len(result.errors)} part(s) of the status could not be read: {result.errors[0]}")

    guarded(ctx, body)


@main.command("dead-letters")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 100_000), help="Show the N newest dead letters."
)
@click.option("--reason", metavar="REASON", help="Only dead letters with this dlq.reason.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (values as text, or base64 when not UTF-8).")
@click.option(
    "--replay",
    "replay_ids",
    multiple=True,
    metavar="P:O|all",
    help="Send these dead letters (PARTITION:OFFSET, repeatable; `all` = those listed) back to the "
    "events topic, after fixing what refused them.",
)
@source_options
@click.pass_obj
def dead_letters(ctx: Context, limit: int, reason: str | None, as_json: bool, replay_ids: tuple[str, ...]) -> None:
    """Show why messages were refused (every dlq.* header decoded), and replay chosen ones."""
    from pipeline.ops import dead_letter_queue as dlq

    def body() -> None:
        kafka = ctx.settings().kafka
        if replay_ids and "all" not in replay_ids:
            letters = dlq.fetch(kafka, dlq.parse_ids(replay_ids))
        else:
            letters = dlq.newest(kafka, limit, reason=reason)
        if as_json:
            import json

            click.echo(json.dumps([x.to_dict() for x in letters], indent=2, ensure_ascii=False))
        else:
            click.echo(dlq.render(letters, kafka.dead_letter_topic))
        if replay_ids:
            click.echo(f"dead-letters: {dlq.replay(kafka, letters).line()}", err=as_json)

    guarded(ctx, body)


def _produce_options(fn: Callable[..., T]) -> Callable[..., T]:
    """Options shared by ``produce`` and ``run``: what the simulated shop sends."""
    options = [
        click.option("--events", type=click.IntRange(min=1), help="Number of messages to send."),
        click.option("--duration", type=click.FloatRange(min=0.1), metavar="S", help="Stop after S seconds."),
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1),
            metavar="N",
            help="Live mode: N events/s with event time = now (default: backfill, as fast as possible).",
        ),
        click.option("--seed", type=int, help="Same seed (and --end-time) = identical stream, ids included."),
        click.option(
            "--end-time",
            type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
            help="Backfill: the window ends here (UTC; default now).",
        ),
        click.option(
            "--window-hours",
            type=click.FloatRange(min=0.01),
            default=24.0,
            show_default=True,
            help="Backfill: event times spread over this many hours.",
        ),
        click.option("--duplicate-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True),
        click.option("--late-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True),
        click.option(
            "--max-lateness", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="MINUTES"
        ),
        click.option("--malformed-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True),
        click.option(
            "--dump",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Write every message exactly as sent (JSON lines).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _build_produce_options(topic: str, params: dict[str, Any], default_events: int | None = None) -> ProduceOptions:
    import datetime as dt
    import secrets

    from pipeline.jobs.produce import ProduceOptions
    from pipeline.simulation.faults import FaultConfig

    end_time = params["end_time"]
    if isinstance(end_time, dt.datetime):
        end_time = end_time.replace(tzinfo=dt.UTC)
    events = (
        params["events"] if params["events"] is not None else (default_events if params["duration"] is None else None)
    )
    try:
        return ProduceOptions(
            topic=topic,
            seed=params["seed"] if params["seed"] is not None else secrets.randbelow(2**31),
            events=events,
            duration_s=params["duration"],
            rate=params["rate"],
            end_time=end_time,
            window=dt.timedelta(hours=float(params["window_hours"])),
            faults=FaultConfig(
                duplicate_rate=params["duplicate_rate"],
                late_rate=params["late_rate"],
                max_lateness=dt.timedelta(minutes=float(params["max_lateness"])),
                malformed_rate=params["malformed_rate"],
            ),
            dump=params["dump"],
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@_produce_options
@source_options
@click.pass_obj
def produce(ctx: Context, /, **params: Any) -> None:
    """Send the simulated shop's clickstream to the events topic."""
    import threading

    from pipeline.jobs.consume import install_signal_handlers
    from pipeline.jobs.produce import produce as run_produce

    def body() -> None:
        from pipeline.health import require_kafka

        settings = ctx.settings()
        options = _build_produce_options(settings.kafka.events_topic, params)
        require_kafka(settings, "producer")
        stop = threading.Event()
        install_signal_handlers(stop)
        result = run_produce(settings.kafka, options, stop=stop)
        click.echo(f"produce: {result.line()}")

    guarded(ctx, body)


@main.command()
@_produce_options
@click.option(
    "--hours",
    default=24,
    show_default=True,
    type=click.IntRange(1, 24 * 90),
    help="Hours covered by the summary printed at the end.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    default=DEFAULT_REPORT,
    show_default=True,
    help="Where to write the HTML report.",
)
@_index_prefix_option
@source_options
@click.pass_obj
def run(ctx: Context, /, hours: int, report_file: Path, index_prefix: str, **params: Any) -> None:
    """The main job: schema, consumer, producer (default 50,000 events), wait until written, summary."""
    import threading

    from pipeline.analytics.report import render_summary
    from pipeline.analytics.summary import summary as read_summary
    from pipeline.jobs.consume import install_signal_handlers
    from pipeline.jobs.report import write_report
    from pipeline.jobs.run import run as run_job

    def body() -> None:
        settings = ctx.settings()
        options = _build_produce_options(settings.kafka.events_topic, params, default_events=50_000)
        stop = threading.Event()
        install_signal_handlers(stop)
        result = run_job(settings, options, index_prefix=index_prefix, stop=stop)
        c = result.consumed
        click.echo(result.schema)
        click.echo(f"produce: {result.produced.line()}")
        click.echo(
            f"consume: {c.messages:,} messages -> {c.events:,} events stored, "
            f"{c.dead_letters:,} dead letters, {c.sessions_written:,} session updates, {c.batches} batches"
        )
        click.echo("")
        click.echo(render_summary(read_summary(settings, hours=hours)))
        click.echo("")
        click.echo(f"report: {write_report(settings, report_file, hours=hours)} (open it in a browser)")

    guarded(ctx, body)
