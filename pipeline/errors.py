"""Typed errors. Each message is one line a user can act on and never carries a secret."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero."""

    exit_code = 1


class ConfigError(PipelineError):
    """The stack outputs or the command line are wrong or missing; the message says how to fix it."""

    exit_code = 2


class ServiceError(PipelineError):
    """A service (Kafka, PostgreSQL, OpenSearch) refused or could not be reached."""

    exit_code = 3


class DeliveryError(PipelineError):
    """Some messages could not be delivered to Kafka after retries."""

    exit_code = 4


class SinkUnavailable(ServiceError):
    """A sink is unreachable, overloaded or timed out: transient, so the consumer retries the
    whole write (every sink write is idempotent) instead of dead-lettering anything."""


class IndexingError(PipelineError):
    """OpenSearch rejected a document for a reason retrying cannot fix (mapping, closed index...).

    Not transient: the message names the document so the cause can be found; the batch
    must not be committed as if it had been indexed.
    """

    exit_code = 5


def first_line(exc: BaseException | str) -> str:
    """The first line of an exception's message (drivers often add multi-line context), bounded."""
    text = str(exc).strip()
    if text:
        return text.splitlines()[0][:300]
    return type(exc).__name__ if isinstance(exc, BaseException) else "unknown error"
