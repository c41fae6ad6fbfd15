"""The clickstream event: its contract, its decoder, and a deterministic generator of it.

Pure code only (no Kafka, no database): the producer and consumer import from here.

Producer side::

    from pipeline.events import SimulationConfig, FaultConfig, backfill, LiveStream, format_dump_line
    for msg in backfill(SimulationConfig(seed=1, rate=50), end_time=now):
        producer.produce(topic, key=msg.key, value=msg.value)

Consumer side::

    from pipeline.events import EventDecoder, InvalidEvent
    decoder = EventDecoder()
    try:
        event = decoder.decode(raw, now)
    except InvalidEvent as err:
        ...  # dead-letter with err.field, err.reason
"""

from pipeline.contract.event import (
    DEFAULT_MAX_AGE,
    DEVICE_TYPES,
    EVENT_TYPES,
    FIELDS,
    MAX_FUTURE,
    SCHEMA_VERSION,
    Event,
    encode_event,
    event_key,
    format_timestamp,
)
from pipeline.events.decode import EventDecoder, InvalidEvent, Reason, decode
from pipeline.events.dump import DumpRecord, format_dump_line, parse_dump_line, read_dump
from pipeline.events.faults import MALFORMED_KINDS, NO_FAULTS, FaultConfig, FaultInjector, Message
from pipeline.events.generator import LiveStream, Simulation, SimulationConfig, backfill, from_ms, to_ms
from pipeline.events.tracker import SESSION_TIMEOUT, SESSION_TIMEOUT_MS, starts_new_session

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEVICE_TYPES",
    "EVENT_TYPES",
    "FIELDS",
    "MAX_FUTURE",
    "MALFORMED_KINDS",
    "NO_FAULTS",
    "SCHEMA_VERSION",
    "SESSION_TIMEOUT",
    "SESSION_TIMEOUT_MS",
    "DumpRecord",
    "Event",
    "EventDecoder",
    "FaultConfig",
    "FaultInjector",
    "InvalidEvent",
    "LiveStream",
    "Message",
    "Reason",
    "Simulation",
    "SimulationConfig",
    "backfill",
    "decode",
    "encode_event",
    "event_key",
    "format_dump_line",
    "format_timestamp",
    "from_ms",
    "parse_dump_line",
    "read_dump",
    "starts_new_session",
    "to_ms",
]
