"""Loading a benchmark from the Hugging Face hub when no local path is given.

Both `datasets` and `huggingface_hub` are imported here, on first use, so importing a loader
costs nothing. Any failure to reach the hub (offline machine, missing repository, gated data,
a name that moved) becomes one `DatasetError` line that says which repository was asked for and
that a local path works instead: an eval run should never die with a network traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from qwenlong.core.errors import DatasetError, typed_first_line
from qwenlong.evals.benchmarks.files import Row


def hub_rows(repo: str, split: str, config: str | None = None) -> Iterator[Row]:
    """Rows of `split` of the hub dataset `repo` (optionally one `config` of it).

    The download happens now; iteration only walks the cached Arrow table.
    """
    try:
        import datasets

        table = datasets.load_dataset(repo, config, split=split)
    except Exception as err:  # any hub/network/format failure means "use a local copy"
        raise DatasetError(
            f"cannot load {repo} split {split!r} from the Hugging Face hub "
            f"({typed_first_line(err)}); pass a local path instead"
        ) from err
    return (
        Row(record, f"hf:{repo} {split} row {index} (0-based)")
        for index, record in enumerate(table)
    )


def hub_file(repo: str, filename: str) -> Path:
    """One file of the hub dataset `repo`, downloaded (or found in the local HF cache)."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, repo_type="dataset"))
    except Exception as err:  # as above: every failure is actionable the same way
        raise DatasetError(
            f"cannot download {filename} of {repo} from the Hugging Face hub "
            f"({typed_first_line(err)}); pass a local path instead"
        ) from err
