"""The test kit's own logic: guarded cleanup, the event builder, reading partition ownership from logs."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.contract.event import EVENT_TYPES, TYPE_RULES, encode_event
from pipeline.events.decode import decode
from tests.support.cleanup import Cleanup, CleanupFailed
from tests.support.events import T0, event_of_type, make_event
from tests.support.process_control import owned_partitions


def fail(text: str) -> None:
    raise RuntimeError(text)


def test_cleanup_runs_every_step_in_reverse_even_after_one_fails() -> None:
    done: list[str] = []
    cleanup = Cleanup(strict=False)
    with cleanup:
        cleanup.undo("first", lambda: done.append("first"))
        cleanup.undo("broken", lambda: fail("disk on fire"))
        cleanup.undo("last", lambda: done.append("last"))
    assert done == ["last", "first"]
    assert cleanup.errors == ["cleanup of broken failed: RuntimeError: disk on fire"]


def test_a_failed_cleanup_never_replaces_the_error_that_ended_the_block() -> None:
    with pytest.raises(ValueError, match="the real problem") as caught:
        with Cleanup() as cleanup:
            cleanup.undo("broken", lambda: fail("disk on fire"))
            raise ValueError("the real problem")
    assert caught.value.__notes__ == ["cleanup of broken failed: RuntimeError: disk on fire"]


def test_after_a_successful_block_a_strict_cleanup_raises_its_failures() -> None:
    with pytest.raises(CleanupFailed, match="disk on fire"):
        with Cleanup(strict=True) as cleanup:
            cleanup.undo("broken", lambda: fail("disk on fire"))


def test_a_nested_cleanup_closed_early_does_not_run_again() -> None:
    done: list[str] = []
    with Cleanup() as cleanup:
        inner = cleanup.nested("inner")
        inner.undo("step", lambda: done.append("step"))
        inner.close()
        assert done == ["step"]
    assert done == ["step"]


def test_entered_context_managers_are_exited_at_close() -> None:
    events: list[str] = []

    class Resource:
        def __enter__(self) -> str:
            events.append("enter")
            return "value"

        def __exit__(self, *exc: object) -> None:
            events.append("exit")

    with Cleanup() as cleanup:
        assert cleanup.enter("resource", Resource()) == "value"
        assert events == ["enter"]
    assert events == ["enter", "exit"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_builder_makes_an_event_the_decoder_accepts_for_every_type(event_type: str) -> None:
    event = event_of_type(event_type)
    assert decode(encode_event(event), T0 + dt.timedelta(minutes=1)) == event
    for field, types in TYPE_RULES.items():
        assert (getattr(event, field) is not None) == (event_type in types), field


def test_the_builder_keeps_overrides_as_given_even_against_the_rules() -> None:
    event = event_of_type("search", event_type="purchase", search_query="kept")
    assert (event.event_type, event.search_query, event.product_id) == ("purchase", "kept", None)
    assert make_event().event_id != make_event().event_id


def test_owned_partitions_follow_assignments_revocations_and_losses() -> None:
    log = "\n".join(
        [
            "INFO pipeline.kafka.consumer: assigned partitions [0, 1, 2] (now [0, 1, 2])",
            "INFO pipeline.kafka.consumer: revoked partitions [1]",
            "INFO pipeline.kafka.consumer: assigned partitions [5] (now [0, 2, 5])",
            "WARNING pipeline.kafka.consumer: lost partitions [2]",
            "INFO pipeline.jobs.consume: batch of 500 events",
        ]
    )
    assert owned_partitions(log) == {0, 5}
    assert owned_partitions("") == set()
