"""``pipeline run``: the main job in one command.

Prepare both sinks, start a consumer, produce the simulated stream, wait until the
consumer group has committed everything that was produced (so every event is in
PostgreSQL and OpenSearch), stop, and hand back what happened for the summary.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from pipeline.config.settings import Settings
from pipeline.errors import PipelineError
from pipeline.health import require_consumer_services, require_kafka
from pipeline.jobs.consume import ConsumeLoop, ConsumeOptions, ConsumeStats
from pipeline.jobs.consume_view import consumer_view
from pipeline.jobs.produce import ProduceOptions, ProduceResult, produce
from pipeline.jobs.setup import prepare_sinks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    schema: str
    produced: ProduceResult
    consumed: ConsumeStats


def run(settings: Settings, produce_options: ProduceOptions, *, index_prefix: str, stop: threading.Event) -> RunResult:
    require_consumer_services(settings)
    require_kafka(settings, "producer")
    schema = prepare_sinks(settings, index_prefix=index_prefix)
    log.info(schema)
    consume_options = ConsumeOptions(
        topic=settings.kafka.events_topic,
        dead_letter_topic=settings.kafka.dead_letter_topic,
        group=settings.kafka.consumer_group,
        index_prefix=index_prefix,
    )
    with consumer_view(settings, consume_options, until_caught_up=True) as (options, on_batch):
        consumer = ConsumeLoop(settings, options, stop=stop, on_batch=on_batch)
        produced = _produce_while_consuming(settings, produce_options, consumer, stop)
    if stop.is_set() and not consumer.drained:
        raise PipelineError("interrupted before every event was written; run `pipeline consume --drain` to finish")
    return RunResult(schema=schema, produced=produced, consumed=consumer.stats)


def _produce_while_consuming(
    settings: Settings, produce_options: ProduceOptions, consumer: ConsumeLoop, stop: threading.Event
) -> ProduceResult:
    """Run the consumer on a thread, produce, then let it drain; re-raise what failed first."""
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)
            stop.set()

    thread = threading.Thread(target=consume, name="consumer", daemon=True)
    thread.start()
    try:
        produced = produce(settings.kafka, produce_options, stop=stop)
        log.info("produce: %s; waiting for the consumer to write everything", produced.line())
        consumer.drain.set()
    finally:
        if failure or stop.is_set():
            stop.set()
        thread.join()
    if failure:
        raise failure[0]
    return produced
