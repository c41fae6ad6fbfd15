"""``pipeline status``: the consumer group, the dead-letter topic and the stores' freshness in one look.

Kafka is read with the admin certificate: describing the group and reading the
dead-letter topic's offsets are operator actions, and the pipeline's own principals are
kept to what the pipeline does (see the README's least-privilege table). Each part that
cannot be read says why in its place; the command then exits non-zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipeline.config.settings import Settings
from pipeline.errors import ServiceError
from pipeline.ops.freshness import Freshness, freshness
from pipeline.ops.group import GroupState, admin_client, group_state, topic_offsets


@dataclass(frozen=True)
class DeadLetterCount:
    topic: str
    messages: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "messages": self.messages, "error": self.error}


@dataclass(frozen=True)
class Status:
    group: GroupState | None
    dead_letters: DeadLetterCount
    stores: list[Freshness]
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer_group": None if self.group is None else self.group.to_dict(),
            "dead_letters": self.dead_letters.to_dict(),
            "stores": [s.to_dict() for s in self.stores],
            "errors": self.errors,
        }


def read_status(settings: Settings, *, index_prefix: str, group: str | None = None) -> Status:
    kafka = settings.kafka
    admin = admin_client(kafka, "admin")
    errors: list[str] = []
    state = None
    try:
        state = group_state(admin, group or kafka.consumer_group, kafka.events_topic)
    except ServiceError as exc:
        errors.append(str(exc))
    try:
        offsets = topic_offsets(admin, kafka.dead_letter_topic)
        dead = DeadLetterCount(kafka.dead_letter_topic, sum(high - low for low, high in offsets.values()))
    except ServiceError as exc:
        dead = DeadLetterCount(kafka.dead_letter_topic, None, str(exc))
        errors.append(str(exc))
    stores = freshness(settings, index_prefix)
    errors += [s.error for s in stores if s.error]
    return Status(state, dead, stores, errors)


def _ago(seconds: float) -> str:
    if seconds < 0:
        return f"{_span(-seconds)} ahead of now"
    return f"{_span(seconds)} behind now"


def _span(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{seconds:.1f} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s // 60 % 60} min"


def render_status(status: Status) -> str:
    lines: list[str] = []
    g = status.group
    if g is not None:
        members = f"{len(g.members)} member{'s' if len(g.members) != 1 else ''}"
        lines.append(f"consumer group {g.group} on {g.topic}: {g.state.lower()}, {members}")
        for m in g.members:
            parts = ",".join(str(p) for p in m.partitions) or "none"
            lines.append(f"  member {m.client_id} at {m.host.lstrip('/')}: partitions {parts}")
        lines.append(f"  {'partition':>9}  {'committed':>12}  {'end':>12}  {'lag':>10}")
        for p in g.partitions:
            committed = "-" if p.committed is None else f"{p.committed:,}"
            lines.append(f"  {p.partition:>9}  {committed:>12}  {p.end:>12,}  {p.lag:>10,}")
        lines.append(f"  total lag {g.total_lag:,} message{'s' if g.total_lag != 1 else ''}")
    d = status.dead_letters
    count = "unknown" if d.messages is None else f"{d.messages:,} message{'s' if d.messages != 1 else ''}"
    lines.append(f"dead-letter topic {d.topic}: {count}")
    for s in status.stores:
        if s.error:
            lines.append(f"newest event in {s.store}: unknown ({s.error})")
        elif s.newest_event is None:
            lines.append(f"newest event in {s.store}: none stored")
        else:
            stamp = s.newest_event.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"newest event in {s.store}: {stamp} UTC, {_ago(s.behind_s or 0.0)}")
    return "\n".join(lines)
