"""The benchmark report's records: the JSON they encode to, and the verdicts of the judge."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.whole_pipeline.judge import _median, _target
from benchmarks.whole_pipeline.procs import NOISY_LOAD, Snapshot, phase_usage, settle
from benchmarks.whole_pipeline.records import (
    Files,
    Freshness,
    FreshnessWindow,
    Git,
    KafkaLimit,
    Machine,
    Report,
    Spread,
    Versions,
    median_of,
)


def report() -> Report:
    machine = Machine(cores=2, memory_gib=24.0, cpu_model=None, kernel="6.1", hostname="h", load_average_before=[1.0])
    versions = Versions(
        python="CPython 3.11",
        kafka="4.3.1",
        librdkafka="2.16.0",
        postgresql="15",
        opensearch="opensearch 2.19.4",
        packages={"msgspec": "0.23.0"},
        git=Git(commit=None, uncommitted_changes=None),
    )
    return Report(mode="ci", started_at="2026-11-30T00:00:00+00:00", command=["x"], machine=machine, versions=versions)


def test_the_json_has_the_fields_as_keys_in_order_and_no_error_unless_one_happened() -> None:
    r = report()
    keys = list(json.loads(r.to_json()))
    assert keys == [f for f in Report.__struct_fields__ if f != "error"]
    r.error = "RuntimeError: boom"
    assert list(json.loads(r.to_json()))[-1] == "error"


def test_a_skipped_chart_says_why_and_a_drawn_one_has_no_such_key() -> None:
    assert msgspec.json.decode(msgspec.json.encode(Files(json="a.json", chart="a.png"))) == {
        "json": "a.json",
        "chart": "a.png",
    }
    skipped = Files(json="a.json", chart=None, chart_skipped="no matplotlib")
    assert msgspec.json.decode(msgspec.json.encode(skipped))["chart_skipped"] == "no matplotlib"


def test_the_freshness_section_opens_with_the_sampler_figures() -> None:
    fields = Freshness.__struct_fields__
    assert fields[: len(FreshnessWindow.__struct_fields__)] == FreshnessWindow.__struct_fields__


def test_a_limit_is_rounded_as_reported_and_survives_zero_seconds() -> None:
    limit = KafkaLimit.timed(1_000, 0.12345, batch=5_000, certificate="consumer")
    assert (limit.seconds, limit.events_per_s) == (0.123, 8100.4)
    assert KafkaLimit.timed(0, 0.0, batch=1, certificate="consumer").events_per_s == 0.0


def test_targets_are_compared_never_assumed() -> None:
    assert _target("rate", 10.0, ">=", 10.0, "events/s").result == "PASS"
    assert _target("rate", 9.9, ">=", 10.0, "events/s").result == "MISS"
    assert _target("delay", 2.1, "<=", 2.0, "s", " slow ").result == "MISS"
    missing = _target("delay", None, "<=", 2.0, "s")
    assert (missing.result, missing.note) == ("n/a", "")


def test_a_phase_is_noisy_exactly_when_the_load_before_it_was_above_the_threshold() -> None:
    def snapshot(at: float, load: float) -> Snapshot:
        return Snapshot(at=at, busy=at, total=2 * at, services={"kafka": at}, load=(load, 0.0, 0.0))

    quiet = phase_usage(snapshot(1.0, NOISY_LOAD), snapshot(3.0, 9.0))
    noisy = phase_usage(snapshot(1.0, NOISY_LOAD + 0.01), snapshot(3.0, 0.0))
    assert not quiet.noisy and noisy.noisy
    assert quiet.service_cpu_s == {"kafka": 2.0} and quiet.machine_busy_pct == 50.0


@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.none(), min_size=1, max_size=9))
def test_a_spread_is_the_median_and_the_extremes_of_the_known_values_in_run_order(
    values: list[float | None],
) -> None:
    spread = Spread.of(values)
    known = sorted(v for v in values if v is not None)
    assert spread.values == values
    if not known:
        assert (spread.median, spread.low, spread.high) == (None, None, None)
        return
    middle = len(known) // 2
    median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
    assert spread.median == round(median, 4)
    assert (spread.low, spread.high) == (min(known), max(known))


@given(st.lists(st.integers(min_value=-1000, max_value=1000), min_size=1, max_size=9))
def test_the_median_repeat_is_the_lower_middle_one_by_its_key(keys: list[int]) -> None:
    repeats = [{"rate": k, "n": i} for i, k in enumerate(keys)]
    chosen = median_of(repeats, lambda r: r["rate"])
    assert chosen in repeats
    middle = (len(keys) - 1) // 2
    assert sum(k < chosen["rate"] for k in keys) <= middle < sum(k <= chosen["rate"] for k in keys)


def test_the_judge_judges_a_repeated_figure_on_its_median_not_on_one_repeat() -> None:
    r = report()
    r.spread = {"freshness_p99_opensearch_events_s": Spread.of([5.0, 1.5, 1.9])}
    assert _median(r, "freshness_p99_opensearch_events_s") == 1.9
    assert _median(r, "not_repeated", 7.0) == 7.0


@given(
    st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=300),
    st.floats(min_value=0, max_value=200),
)
def test_a_phase_waits_until_the_load_has_settled_and_never_longer_than_allowed(
    loads: list[float], max_wait: float
) -> None:
    clock = [0.0]
    readings = iter(loads)
    last = [loads[0]]

    def load() -> float:
        last[0] = next(readings, last[0])
        return last[0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    waited = settle(load, threshold=1.5, max_wait_s=max_wait, clock=lambda: clock[0], sleep=sleep, poll_s=1.0)
    assert waited <= max_wait + 1e-9
    settled_at = next((i for i, x in enumerate(loads) if x <= 1.5), None)
    if settled_at is not None and settled_at < max_wait:
        assert waited == settled_at  # one reading a second, the first one at once
    else:
        assert waited == pytest.approx(max_wait)
