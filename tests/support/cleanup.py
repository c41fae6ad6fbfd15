"""Removing what a test or benchmark made on the shared stack, without ever hiding why it failed.

Every resource is registered for removal the moment it exists, and removed in reverse
order when the block ends, whatever happened in between. A removal that fails is
recorded and the next one still runs: a failed cleanup must neither leave the rest
behind nor replace the error that ended the block (it is added to that error as a note).
When the block itself succeeded, ``strict`` decides: raise the cleanup failures (tests:
a leak is a defect) or only keep them in ``errors`` (benchmarks report them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from types import TracebackType
from typing import TypeVar

log = logging.getLogger("tests.support.cleanup")

T = TypeVar("T")


class CleanupFailed(RuntimeError):
    """Removing something a block made failed (the block itself succeeded)."""


class Cleanup:
    """An ``ExitStack`` whose every step is guarded; a context manager and a reusable part of larger ones."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.errors: list[str] = []
        self._stack = ExitStack()

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        before = len(self.errors)
        self.close()
        new = self.errors[before:]
        if exc is not None:
            for text in new:
                exc.add_note(text)
        elif new and self.strict:
            raise CleanupFailed("; ".join(new))

    def close(self) -> None:
        """Run every registered step now (later calls do nothing)."""
        self._stack.close()

    def undo(self, what: str, action: Callable[[], object]) -> None:
        """Register ``action`` to run at close; its failure is recorded, never raised from here."""

        def guarded() -> None:
            started = time.monotonic()
            try:
                action()
                log.info("removed %s (%.1f s)", what, time.monotonic() - started)
            except Exception as exc:  # cleanup must go on with the next item
                text = f"cleanup of {what} failed: {type(exc).__name__}: {str(exc)[:200]}"
                log.warning(text)
                self.errors.append(text)

        self._stack.callback(guarded)

    def enter(self, what: str, manager: AbstractContextManager[T]) -> T:
        """Enter ``manager`` now and exit it (guarded) at close: for resources written as context managers."""
        value = manager.__enter__()
        self.undo(what, lambda: manager.__exit__(None, None, None))
        return value

    def nested(self, what: str) -> Cleanup:
        """A cleanup of its own that can be closed early, and is otherwise closed with this one."""
        inner = Cleanup(strict=False)
        self.undo(what, inner.close)
        inner.errors = self.errors  # one record of failures
        return inner
