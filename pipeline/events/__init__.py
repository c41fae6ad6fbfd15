"""The clickstream event: its contract and its decoder.

Pure code only (no Kafka, no database). The simulated shop that produces these events
lives in ``pipeline.simulation``.

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

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEVICE_TYPES",
    "EVENT_TYPES",
    "FIELDS",
    "MAX_FUTURE",
    "SCHEMA_VERSION",
    "Event",
    "EventDecoder",
    "InvalidEvent",
    "Reason",
    "decode",
    "encode_event",
    "event_key",
    "format_timestamp",
]
