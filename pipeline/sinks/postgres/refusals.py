"""Which PostgreSQL failures belong to one event, and how to say what the server said.

A batch is written with one COPY and one INSERT; when either fails, the error is either
about a value of some row (a number the column cannot hold, a character the encoding
cannot store, a constraint the row breaks: the SQLSTATE classes 22, 23 and 54, or the
driver refusing to encode a value before it is sent) or about the database itself
(connection, privileges, missing schema, read-only mode, ...). Only the first kind is
isolated event by event and dead-lettered; the second is handled as before: retried when
transient, reported as one line when not.
"""

from __future__ import annotations

import re
import struct
from typing import Final

import psycopg
from psycopg import errors as pg_errors

from pipeline.errors import first_line

ROW_ERRORS: Final = (
    psycopg.DataError,  # class 22, and the driver's own "cannot encode this value"
    psycopg.IntegrityError,  # class 23
    pg_errors.ProgramLimitExceeded,  # class 54: a value too large for an index row, ...
    UnicodeError,
    OverflowError,
    ValueError,
    struct.error,
)
"""Failures caused by the values of a row: each one is found and dead-lettered on its own."""

_COPY_COLUMN: Final = re.compile(r"\bcolumn (\w+)")
DETAIL_MAX: Final = 900


def is_row_error(exc: BaseException) -> bool:
    return isinstance(exc, ROW_ERRORS)


def error_key(exc: BaseException) -> str:
    """What two refusals must share to count as "the same error" (SQLSTATE, or the driver's error type)."""
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    return state or type(exc).__name__


def describe(exc: BaseException) -> tuple[str | None, str]:
    """(the column the server named, if any; the server's message, one line, bounded)."""
    if not isinstance(exc, psycopg.Error) or exc.sqlstate is None:
        return None, f"the value cannot be sent to PostgreSQL: {type(exc).__name__}: {first_line(exc)}"[:DETAIL_MAX]
    diag = exc.diag
    column = diag.column_name
    if column is None and diag.context:
        found = _COPY_COLUMN.search(diag.context)
        column = found.group(1) if found else None
    text = f"{exc.sqlstate} {diag.message_primary or first_line(exc)}"
    if diag.message_detail:
        text += f" ({first_line(diag.message_detail)})"
    if diag.constraint_name:
        text += f" [constraint {diag.constraint_name}]"
    return column, text[:DETAIL_MAX]
