"""The `qwenlong` command line.

Each command lives in its own module under `qwenlong.app.commands` and adds itself with
`register(app)`. Heavy libraries (torch, transformers, ray) are imported inside the commands, so
`qwenlong --help` stays fast. Errors derived from `QwenlongError` print one line and exit 2; the
traceback is shown only with `--debug`.
"""

from __future__ import annotations

import importlib
import sys

import typer

import qwenlong.memagent  # noqa: F401  (adds solver: memagent / routed to the evals SOLVERS)
from qwenlong.core.errors import QwenlongError

COMMAND_MODULES = (
    "qwenlong.app.commands.models",
    "qwenlong.app.commands.generate",
    "qwenlong.app.commands.serve",
    "qwenlong.app.commands.eval",
    "qwenlong.app.commands.tables",
    "qwenlong.app.commands.data",
    "qwenlong.app.commands.synth",
    "qwenlong.app.commands.merge",
    "qwenlong.app.commands.memagent",
    "qwenlong.app.commands.train",
    "qwenlong.app.commands.plan",
)

app = typer.Typer(
    name="qwenlong",
    help="Open reproduction of the QwenLong-L1.5 long-context post-training recipe.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=False)
    except QwenlongError as err:
        if _state["debug"] or "--debug" in (argv or sys.argv):
            raise
        print(str(err), file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # click's usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
