"""`qwenlong tables [TABLE] [--runs DIR ...] [--format text|markdown|json]`.

Without TABLE: the paper's tables with their captions. With TABLE ("7", "table7",
"table7_main"): that table as printed in the paper, each run directory's scores.json added as a
row, and footnotes for misprints, missing averages, pending items and metric kinds.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer


class OutputFormat(StrEnum):
    """How to print: a rich table, Markdown (for reports), or JSON (for scripts)."""

    text = "text"
    markdown = "markdown"
    json = "json"


def _console():  # rich is imported only when a table is printed
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def _print_index(output: OutputFormat) -> None:
    from qwenlong.evals.tables import load_paper_tables

    tables = load_paper_tables()
    if output is OutputFormat.json:
        listing = [{"table": t.name, "caption": t.caption} for t in tables.values()]
        typer.echo(json.dumps(listing, indent=1))
        return
    if output is OutputFormat.markdown:
        typer.echo("\n".join(f"- `{t.name}`: {t.caption}" for t in tables.values()))
        return
    from rich.table import Table

    index = Table("Table", "Caption", title="QwenLong-L1.5 paper tables")
    for table in tables.values():
        index.add_row(table.name, table.caption)
    _console().print(index)


def _print_view(view, output: OutputFormat) -> None:
    from qwenlong.evals.tables import format_value, to_dict, to_markdown

    if output is OutputFormat.json:
        typer.echo(json.dumps(to_dict(view), indent=1))
        return
    if output is OutputFormat.markdown:
        typer.echo(to_markdown(view), nl=False)
        return
    from rich.table import Table

    table = Table(title=f"{view.name}: {view.caption}")
    table.add_column("Model")
    for column in view.columns:
        table.add_column(column, justify="right")
    table.add_column("Source")
    for row in view.rows:
        style = None if row.source == "paper" else "bold"
        cells = [row.label, *(format_value(v) for v in row.values), row.source]
        table.add_row(*cells, style=style)
    console = _console()
    console.print(table)
    for note in view.footnotes:
        console.print(f"- {note}", highlight=False)


def tables_command(
    table: str | None = typer.Argument(None, help="Table name or number, e.g. 7 or table7_main."),
    runs: list[Path] = typer.Option(
        [], "--runs", help="Eval run directory holding scores.json; repeat for several."
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="Output format."),
) -> None:
    """Show the paper's result tables, with our eval runs as extra rows."""
    from qwenlong.evals.tables import build_view, load_paper_tables, load_run, resolve_table

    if table is None:
        if runs:
            raise typer.BadParameter("--runs needs a TABLE to add the runs to", param_hint="--runs")
        _print_index(output)
        return
    paper = resolve_table(table, load_paper_tables())
    _print_view(build_view(paper, [load_run(path) for path in runs]), output)


def register(app: typer.Typer) -> None:
    """Add `tables` to the CLI."""
    app.command("tables")(tables_command)
