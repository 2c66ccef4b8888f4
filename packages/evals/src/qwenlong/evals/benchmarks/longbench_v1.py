"""LongBench (v1, THUDM/LongBench): the five English QA datasets the paper reports.

Published form: `data.zip` on the hub, holding `data/{dataset}.jsonl` for every task; each
record has `input` (the question), `context`, `answers` (list of gold strings), `length`,
`dataset`, `language`, `all_classes` and `_id`. The official QA prompts put the context and the
question into a template verbatim, so the context here is the `context` field as is.

`path` may be:
- `data.zip` itself, or a folder holding it;
- a folder with the extracted `{dataset}.jsonl` files, directly or under `data/`;
- one `{dataset}.jsonl` file (the dataset is read from its name).

With no path, `data.zip` is downloaded from the hub (the hub's loading script is not usable
with datasets >= 4, so the zip is read directly).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import TokenCounter, fill_context_tokens, resolve_subset
from qwenlong.evals.benchmarks.files import Row, jsonl_rows, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_file

TASK_TYPES = {
    "2wikimqa": "multihop",
    "hotpotqa": "multihop",
    "musique": "multihop",
    "narrativeqa": "reading",
    "qasper": "reading",
}
"""The paper's LongBench-V1 QA datasets (official names) and the task type each maps to."""

DATASETS = tuple(TASK_TYPES)
HUB_REPO = "THUDM/LongBench"


def _zip_rows(archive: Path, dataset: str) -> Iterator[Row]:
    member = f"data/{dataset}.jsonl"
    try:
        with zipfile.ZipFile(archive) as zipped:
            raw = zipped.read(member)
    except zipfile.BadZipFile as err:
        raise DatasetError(f"{archive}: not a readable zip archive") from err
    except KeyError as err:
        raise DatasetError(f"{archive}: archive has no {member}") from err
    lines = io.StringIO(raw.decode("utf-8"))
    return jsonl_rows(lines, f"{archive}:{member}")


def _folder_rows(folder: Path, dataset: str) -> Iterator[Row]:
    if (folder / "data.zip").is_file():
        return _zip_rows(folder / "data.zip", dataset)
    for candidate in (folder / f"{dataset}.jsonl", folder / "data" / f"{dataset}.jsonl"):
        if candidate.is_file():
            return read_rows(candidate)
    raise DatasetError(
        f"{folder}: no LongBench file for {dataset!r} "
        f"(expected data.zip, {dataset}.jsonl or data/{dataset}.jsonl)"
    )


class LongBenchV1QA:
    """LongBench v1 QA. Paper: max(cover-EM, judge); official: LongBench's token F1."""

    name = "longbench_v1_qa"
    paper_metric = "cover_em"
    official_metric = "longbench_f1"
    breakdowns = ("dataset",)
    use_judge = True
    subsets = ("all", *DATASETS)
    """`subset` values: one official dataset name, or "all" (default: the five together)."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        chosen = resolve_subset(self.name, subset, self.subsets, "all")
        wanted = DATASETS if chosen == "all" else (chosen,)
        samples: list[TaskSample] = []
        for dataset, rows in self._sources(path, chosen, wanted):
            samples.extend(self._sample(row, dataset) for row in rows)
        return fill_context_tokens(samples, count_tokens)

    def _sources(
        self, path: Path | None, chosen: str, wanted: tuple[str, ...]
    ) -> Iterator[tuple[str, Iterator[Row]]]:
        if path is None:
            archive = hub_file(HUB_REPO, "data.zip")
            for dataset in wanted:
                yield dataset, _zip_rows(archive, dataset)
            return
        require_path(path, "LongBench data.zip or {dataset}.jsonl files")
        if path.is_dir():
            for dataset in wanted:
                yield dataset, _folder_rows(path, dataset)
        elif path.suffix == ".zip":
            for dataset in wanted:
                yield dataset, _zip_rows(path, dataset)
        else:
            dataset = path.stem
            if dataset not in TASK_TYPES:
                raise DatasetError(
                    f"{path}: file name must be one of {', '.join(f'{d}.jsonl' for d in DATASETS)}"
                )
            if dataset not in wanted:
                raise DatasetError(f"{path}: holds {dataset!r}, not the requested {chosen!r}")
            yield dataset, read_rows(path)

    def _sample(self, row: Row, dataset: str) -> TaskSample:
        if row.has("dataset") and row.text("dataset") != dataset:
            raise row.error(f"field 'dataset' is {row.text('dataset')!r} in the {dataset} file")
        length = row.integer("length") if row.has("length") else None
        meta = {"dataset": dataset, "language": row.optional_text("language")}
        if length is not None:
            meta["length"] = str(length)
        return TaskSample(
            id=f"{dataset}/{row.text('_id')}",
            task_type=TASK_TYPES[dataset],
            question=row.text("input"),
            answers=row.text_list("answers"),
            answer_kind="text",
            context=row.text("context"),
            provenance=Provenance(generator=self.name),
            meta=meta,
        )
