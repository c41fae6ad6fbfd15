"""The simulated shop: a deterministic clickstream, seed and times in, Kafka messages out.

Pure code only (no Kafka, no clock): ``pipeline produce`` sends what this yields::

    from pipeline.simulation import SimulationConfig, backfill
    for msg in backfill(SimulationConfig(seed=1, rate=50), end_time=now):
        producer.produce(topic, key=msg.key, value=msg.value)
"""

from pipeline.simulation.config import SimulationConfig
from pipeline.simulation.dump import DumpRecord, format_dump_line, parse_dump_line, read_dump
from pipeline.simulation.engine import Simulation
from pipeline.simulation.epoch import from_ms, to_ms
from pipeline.simulation.faults import NO_FAULTS, FaultConfig, FaultInjector
from pipeline.simulation.malformed import MALFORMED_KINDS
from pipeline.simulation.record import SimulatedMessage
from pipeline.simulation.streams import LiveStream, backfill, backfill_batches, backfill_count
from pipeline.simulation.tracker import SESSION_TIMEOUT, SESSION_TIMEOUT_MS, starts_new_session

__all__ = [
    "MALFORMED_KINDS",
    "NO_FAULTS",
    "SESSION_TIMEOUT",
    "SESSION_TIMEOUT_MS",
    "DumpRecord",
    "FaultConfig",
    "FaultInjector",
    "LiveStream",
    "SimulatedMessage",
    "Simulation",
    "SimulationConfig",
    "backfill",
    "backfill_batches",
    "backfill_count",
    "format_dump_line",
    "from_ms",
    "parse_dump_line",
    "read_dump",
    "starts_new_session",
    "to_ms",
]
