"""The `qwenlong` command line.

Each command lives in its own module under `qwenlong.app.commands` and adds itself with
`register(app)`. Heavy libraries (torch, transformers, ray) are imported inside the commands, so
`qwenlong --help` stays fast.

Exit codes are those of `qwenlong.app.exit_codes`. Errors derived from `QwenlongError` and
usage errors (a bad option value, a missing argument, an unknown command) print one line and
exit 2, the traceback of the former shown only with `--debug`; a run that finished with items
pending or skipped, or read nothing, prints one line and exits 3.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

import qwenlong.memagent  # noqa: F401  (adds solver: memagent / routed to the evals SOLVERS)
from qwenlong.app.exit_codes import BAD_INPUT, CRASH, INCOMPLETE, OK, RunIncomplete
from qwenlong.core.errors import QwenlongError

try:  # typer >= 0.2x vendors click as typer._click; its exceptions are not click's
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover (a typer that uses click itself)
    from click.exceptions import NoArgsIsHelpError

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


def usage_line(err: typer.TyperException | click.ClickException) -> str:
    """click's usage error as one line: `Error: <what is wrong with which option>`.

    click's own `show()` prints the usage synopsis and a "Try --help" line first; the message
    alone already names the option or argument, and it is joined onto one line in case a
    parameter's description spans several.
    """
    message = " ".join(line.strip() for line in err.format_message().splitlines() if line.strip())
    return f"Error: {message}"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; exits with a code of `qwenlong.app.exit_codes`."""
    try:
        code = app(args=argv, standalone_mode=False)
    except RunIncomplete as err:
        print(str(err), file=sys.stderr)
        sys.exit(INCOMPLETE)
    except QwenlongError as err:
        if _state["debug"] or "--debug" in (argv if argv is not None else sys.argv):
            raise
        print(str(err), file=sys.stderr)
        sys.exit(BAD_INPUT)
    except NoArgsIsHelpError as err:  # `qwenlong` or `qwenlong eval` alone: the help, exit 2
        if err.format_message().strip():  # rich has printed it already, and left this empty
            print(err.format_message(), file=sys.stderr)
        sys.exit(BAD_INPUT)
    # typer >= 0.2x vendors click as typer._click, whose exceptions derive from TyperException
    # and not from click.ClickException; both are caught so either typer line works.
    except (typer.TyperException, click.ClickException) as err:
        print(usage_line(err), file=sys.stderr)
        sys.exit(BAD_INPUT)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(CRASH)
    if isinstance(code, int) and code != OK:  # `raise typer.Exit(code)` returns its code here
        sys.exit(code)


if __name__ == "__main__":
    main()
