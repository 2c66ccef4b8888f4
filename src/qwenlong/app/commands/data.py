"""`qwenlong data check PATH`: validate a TaskSample dataset and summarise it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

data_app = typer.Typer(
    help="Inspect TaskSample datasets (parquet files or folders).", no_args_is_help=True
)


@data_app.command("check")
def check_command(
    path: Path = typer.Argument(..., help="A parquet file or a folder of parquet files."),
) -> None:
    """Validate every row against the TaskSample schema and print counts per task and answer kind.

    Exits 2 with one line naming the file, row and field at the first bad row; 3 when the
    dataset holds no rows.
    """
    from rich.console import Console
    from rich.table import Table

    from qwenlong.app.run_outcome import check_read_something
    from qwenlong.core.dataset_io import iter_samples

    tasks: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    lengths: list[int] = []
    for sample in iter_samples(path):
        tasks[sample.task_type] += 1
        kinds[sample.answer_kind] += 1
        if sample.context_tokens is not None:
            lengths.append(sample.context_tokens)
    table = Table(title=f"{path}: {sum(tasks.values())} samples, schema valid")
    table.add_column("task type")
    table.add_column("samples", justify="right")
    for task, count in sorted(tasks.items()):
        table.add_row(task, str(count))
    console = Console()
    console.print(table)
    console.print("answer kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    if lengths:
        lengths.sort()
        console.print(
            f"context tokens: min {lengths[0]}, median {lengths[len(lengths) // 2]}, "
            f"max {lengths[-1]} ({len(lengths)} counted)"
        )
    check_read_something(sum(tasks.values()), "samples", path)  # an empty dataset: exit 3


def register(app: typer.Typer) -> None:
    """Add `data` to the CLI."""
    app.add_typer(data_app, name="data")
