"""The `qwenlong` exit codes, in one place, and the error that ends an incomplete run.

A script driving qwenlong needs to tell "the run finished but left work undone" (rerun it, the
run directory resumes) from "the input is wrong" (rerunning will not help) and from a crash.
"""

from __future__ import annotations

OK = 0
"""The command did everything it was asked."""
CRASH = 1
"""An unexpected error: a bug or a failure qwenlong does not anticipate; the traceback shows."""
BAD_INPUT = 2
"""A usage error, or bad input (config, dataset, model path, unreachable server): one line."""
INCOMPLETE = 3
"""The run finished, but items are pending or skipped, or it read nothing: one line says how
many. Outputs are written; rerunning the same command resumes the pending items."""


class RunIncomplete(Exception):
    """A finished run that left items pending or skipped, or read nothing (exit `INCOMPLETE`).

    Raised by a command after its outputs are written and printed; the message is one line
    saying how many items were read, pending or skipped.
    """

    def __str__(self) -> str:
        return f"incomplete: {super().__str__()}"
