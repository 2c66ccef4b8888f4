"""Errors a person can act on.

Every error the project raises on bad input derives from `QwenlongError`, whose message is one
line saying what is wrong and where (file, row, key, URL). The CLI prints that line and exits
non-zero; the traceback is shown only with `--debug`.
"""

from __future__ import annotations


class QwenlongError(Exception):
    """Base class: `str(err)` is a complete, one-line explanation."""

    kind = "error"

    def __str__(self) -> str:
        return f"{self.kind}: {super().__str__()}"


class ConfigError(QwenlongError):
    """A YAML file, override or config value is wrong."""

    kind = "config error"


class DatasetError(QwenlongError):
    """A dataset file is missing, malformed, or has a row that breaks the schema."""

    kind = "dataset error"


class BackendError(QwenlongError):
    """A chat-model backend failed in a way retrying will not fix (bad request, bad model path)."""

    kind = "backend error"


class BackendUnavailable(BackendError):
    """A server could not be reached, or kept failing after every retry.

    Callers that can wait (the eval runner, the judge) treat this as "try later": the item
    stays pending and is never scored wrong because of an outage.
    """

    kind = "backend unavailable"


class CheckpointError(QwenlongError):
    """A checkpoint or model directory is missing, unreadable, or does not match what it must."""

    kind = "checkpoint error"


def first_line(err: BaseException) -> str:
    """The first non-empty line of `str(err)`, stripped; the type name when there is none.

    Library errors (pyarrow, transformers, datasets) often carry a multi-line message with a
    traceback or a hint block after the first line, while our messages must stay one line. An
    empty message would otherwise leave "reason: " with nothing after it, or crash an
    `[0]` on the empty list of lines.
    """
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()
    return type(err).__name__


def typed_first_line(err: BaseException) -> str:
    """`first_line` behind the type name ("KeyError: 'id'"), or the type name alone.

    For errors whose message means little without its type (a bare "'id'" from a KeyError).
    """
    if not str(err).strip():
        return type(err).__name__
    return f"{type(err).__name__}: {first_line(err)}"
