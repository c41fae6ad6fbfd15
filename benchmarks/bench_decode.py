"""Decode + validate throughput: msgspec EventDecoder vs json.loads + JSON Schema validators.

Prints figures only (no assertions). The alternatives do the same job as the decoder:
parse with exact decimals, validate against the shipped schema (same rules, minus the
time window), then parse the timestamp and apply the time window, and build an object.

Usage::

    python -m benchmarks.bench_decode [--events 100000] [--repeat 5]

The alternatives need test-only packages (``pip install jsonschema fastjsonschema``);
missing ones are reported and skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import islice
from typing import Any

from pipeline.contract.schema import SCHEMA_PATH
from pipeline.events import EventDecoder, InvalidEvent
from pipeline.simulation import FaultConfig, SimulationConfig, backfill

END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
MAX_AGE = dt.timedelta(days=30)
MAX_FUTURE = dt.timedelta(minutes=10)


def _corpus(n: int, malformed: bool) -> list[bytes]:
    faults = FaultConfig(malformed_rate=1.0) if malformed else FaultConfig()
    stream = backfill(SimulationConfig(seed=3, rate=20), END, faults=faults)
    if malformed:
        return [m.value for m in islice((m for m in stream if m.kind.startswith("malformed:")), n)]
    return [m.value for m in islice(stream, n)]


def _time_window(doc: dict[str, Any]) -> dt.datetime:
    ts = dt.datetime.fromisoformat(doc["occurred_at"])
    if ts > END + MAX_FUTURE or ts < END - MAX_AGE:
        raise ValueError("occurred_at out of window")
    return ts


def _jsonschema_decoder() -> Callable[[bytes], object] | str:
    try:
        import jsonschema
    except ImportError:
        return "not installed (pip install jsonschema)"
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"), parse_float=Decimal)
    validator = jsonschema.Draft202012Validator(schema)

    def decode(raw: bytes) -> object:
        doc = json.loads(raw, parse_float=Decimal)
        validator.validate(doc)
        doc["occurred_at"] = _time_window(doc)
        return doc

    return decode


def _fastjsonschema_decoder() -> Callable[[bytes], object] | str:
    try:
        import fastjsonschema
    except ImportError:
        return "not installed (pip install fastjsonschema)"
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    try:
        validate = fastjsonschema.compile(schema)
    except Exception as err:  # the draft 2020-12 keywords may be unsupported
        return f"cannot compile the schema: {err}"

    def decode(raw: bytes) -> object:
        # Floats, not Decimal: fastjsonschema's multipleOf cannot take Decimal, and with
        # floats it misjudges cents (12.99 / 0.01 is not an integer in binary floating
        # point), so it wrongly rejects valid prices: counted as errors below.
        doc = json.loads(raw)
        validate(doc)
        doc["occurred_at"] = _time_window(doc)
        return doc

    return decode


def _rate(decode: Callable[[bytes], object], corpus: list[bytes], repeat: int) -> tuple[float, int]:
    """(best events/s over ``repeat`` passes, messages rejected); errors are caught as a consumer would."""
    best = 0.0
    rejected = 0
    for _ in range(repeat):
        gc.collect()
        rejected = 0
        t0 = time.perf_counter()
        for raw in corpus:
            try:
                decode(raw)
            except Exception:
                rejected += 1
        best = max(best, len(corpus) / (time.perf_counter() - t0))
    return best, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--alt-events", type=int, default=10_000, help="events timed for the slower alternatives")
    args = parser.parse_args()

    valid = _corpus(args.events, malformed=False)
    broken = _corpus(min(args.events, 20_000), malformed=True)
    size = sum(map(len, valid)) / len(valid)
    decoder = EventDecoder(max_age=MAX_AGE)

    def msgspec_decode(raw: bytes) -> object:
        return decoder.decode(raw, END)

    # Sanity: every valid message passes and every malformed one fails with InvalidEvent.
    for raw in valid[:2000]:
        msgspec_decode(raw)
    for raw in broken[:2000]:
        try:
            msgspec_decode(raw)
        except InvalidEvent:
            continue
        raise AssertionError(f"malformed message accepted: {raw[:120]!r}")

    candidates: list[tuple[str, Callable[[bytes], object] | str]] = [
        ("msgspec EventDecoder (this module)", msgspec_decode),
        ("json.loads + jsonschema (Draft202012Validator)", _jsonschema_decoder()),
        ("json.loads + fastjsonschema (compiled)", _fastjsonschema_decoder()),
    ]
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {os.getloadavg()}")
    print(f"{len(valid):,} valid events (mean {size:.0f} bytes), {len(broken):,} malformed; best of {args.repeat}\n")
    print(f"{'decoder':48} {'valid ev/s':>11} {'us/ev':>7} {'wrongly rejected':>17} {'malformed/s':>12} {'missed':>7}")
    baseline = None
    for i, (name, decode) in enumerate(candidates):
        if isinstance(decode, str):
            print(f"{name:48} {decode}")
            continue
        # The alternatives are slow: time them on a slice so the script ends in minutes.
        ok_corpus = valid if i == 0 else valid[: args.alt_events]
        bad_corpus = broken if i == 0 else broken[: args.alt_events]
        ok, false_rejects = _rate(decode, ok_corpus, args.repeat)
        bad, rejects = _rate(decode, bad_corpus, args.repeat)
        missed = len(bad_corpus) - rejects
        baseline = baseline or ok
        ratio = "" if ok == baseline else f"  ({baseline / ok:.0f}x slower)"
        print(
            f"{name:48} {ok:11,.0f} {1e6 / ok:7.2f} {false_rejects:>8,}/{len(ok_corpus):<8,}"
            f" {bad:12,.0f} {missed:7,}{ratio}"
        )
    print("(missed: malformed messages accepted; json.loads lets UTF-8-encoded surrogates (\\xed\\xa0\\x80) through)")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
