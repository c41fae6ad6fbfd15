"""What the simulation hands a producer: one Kafka message's bytes and what they are.

``kind`` says what a message is (``valid``, ``duplicate``, ``late`` or
``malformed:<kind>``), for tests and dumps; the bytes themselves carry no marker. The
name avoids ``confluent_kafka.Message``, the broker's view of a message, which code
that sends these also handles.
"""

from __future__ import annotations

from typing import Final

import msgspec

from pipeline.contract.event import Event

VALID: Final = "valid"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"
MALFORMED_PREFIX: Final = "malformed:"

read_event: Final = msgspec.json.Decoder(Event).decode
"""The event in wire bytes the simulation wrote itself (trusted: no validation)."""


class SimulatedMessage(msgspec.Struct, frozen=True, gc=False):
    """One Kafka message as the producer should send it, plus what it is (for tests and ``--dump`` files).

    ``key`` and ``value`` are the exact bytes to produce. ``kind`` is ``valid``,
    ``duplicate``, ``late`` or ``malformed:<kind>``. ``expected`` is, for a malformed
    message, the ``(field, reason)`` the decoder must reject it with. The event itself
    is not kept: the hot path only builds bytes; ``event`` decodes them on demand.
    """

    key: bytes
    value: bytes
    kind: str = VALID
    expected: tuple[str | None, str] | None = None

    @property
    def event(self) -> Event | None:
        """The event a valid, duplicate or late message carries (None if malformed)."""
        if self.kind.startswith(MALFORMED_PREFIX):
            return None
        return read_event(self.value)
