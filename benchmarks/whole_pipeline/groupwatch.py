"""Watching a consumer group's progress from outside, with the admin API, while the pipeline runs.

Why from outside: the pipeline commits a batch's offsets only after both sinks have it,
so the group's committed offsets say, without asking the pipeline, how much has been
written everywhere. The drain uses that to stop its clock when the whole backlog is
written (not when the processes get round to exiting), and the freshness run uses the
lag (end of the topic minus committed) to tell when the consumer has caught up with
the load and the measured window may begin.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, TopicPartition

from pipeline.config.settings import Settings
from tests.support.kafka_offsets import admin_client, committed_offsets


class GroupWatcher(threading.Thread):
    """Polls committed offsets (and, without ``ends``, the topic's end offsets) every ``poll_s``.

    With ``ends`` (a fixed backlog) it records ``done_at`` (monotonic) when the group has
    committed up to them and stops. Without, it keeps a lag history until stopped.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        group: str,
        *,
        partitions: list[int],
        ends: dict[int, int] | None = None,
        poll_s: float = 0.1,
    ) -> None:
        super().__init__(name=f"group-watch-{group}", daemon=True)
        self.topic = topic
        self.group = group
        self.partitions = partitions
        self.ends = ends
        self.poll_s = poll_s
        self.admin = admin_client(settings)
        self._reader: Consumer | None = None
        if ends is None:
            self._reader = Consumer({**settings.kafka.client_config("admin"), "group.id": "pipeline-bench-ends"})
        self.done_at: float | None = None
        self.lag: int | None = None
        self.history: list[tuple[float, int]] = []
        """(wall-clock time, lag in messages) of every successful poll."""
        self.error: str | None = None
        self._halt = threading.Event()

    def committed(self) -> dict[int, int]:
        return committed_offsets(self.admin, self.group, self.topic, self.partitions)

    def end_offsets(self) -> dict[int, int]:
        if self.ends is not None:
            return self.ends
        assert self._reader is not None
        return {
            p: self._reader.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1] for p in self.partitions
        }

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    ends = self.end_offsets()
                    committed = self.committed()
                    lag = sum(max(0, end - max(committed.get(p, 0), 0)) for p, end in ends.items())
                    self.lag = lag
                    self.history.append((time.time(), lag))
                    if self.ends is not None and all(committed.get(p, -1) >= end for p, end in ends.items()):
                        self.done_at = time.monotonic()
                        return
                except Exception as exc:  # e.g. the group has no offsets yet: keep watching
                    self.error = f"{type(exc).__name__}: {exc}"
                self._halt.wait(self.poll_s)
        finally:
            if self._reader is not None:
                self._reader.close()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=15)
