"""DocMath-Eval testmini (yale-nlp/DocMath-Eval): numerical reasoning over financial documents.

Published form: one split per subset and part, `{subset}_testmini` and `{subset}_test`, for the
subsets complong (300 testmini questions), compshort (200), simplong (100) and simpshort (200):
800 testmini questions in all, the set the paper reports. Each record has `question_id`,
`question`, `paragraphs` (text paragraphs and markdown tables of the document, in order),
`table_evidence` / `paragraph_evidence` (indices into `paragraphs`), `python_solution` and
`ground_truth` (the float the solution returns; hidden in the test part, which is why only
testmini is loaded). Some copies also carry a separate `tables` list; it is appended after the
paragraphs when present.

`path` may be:
- a folder holding `{subset}_testmini.json` (the GitHub `data/` files, a JSON list),
  `{subset}_testmini.jsonl`, or the hub's parquet shards `{subset}_testmini-*.parquet`, directly
  or under `data/` (the hub layout);
- one such file, whose subset is read from its name (or from `subset` if the name says none).

The context is the paragraphs joined by newlines, as the official CoT prompt builds it
(`'\\n'.join(example['paragraphs'])`); the gold is `repr(float(ground_truth))`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import (
    TokenCounter,
    fill_context_tokens,
    number_text,
    resolve_subset,
)
from qwenlong.evals.benchmarks.files import Row, find_files, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_rows

SUBSETS = ("complong", "compshort", "simplong", "simpshort")
"""The four testmini subsets, in the order DocMath-Eval lists them."""

HUB_REPO = "yale-nlp/DocMath-Eval"


def _subset_files(folder: Path, subset: str) -> list[Path]:
    stem = f"{subset}_testmini"
    patterns = [f"{stem}.json", f"{stem}.jsonl", f"{stem}-*.parquet", f"{stem}.parquet"]
    return find_files(folder, patterns) or find_files(folder / "data", patterns)


def _subset_from_name(path: Path) -> str | None:
    for subset in SUBSETS:
        if path.name.startswith(subset):
            return subset
    return None


class DocMath:
    """DocMath-Eval testmini. Paper: max(cover-EM, judge); official: DocMath's numeric rule."""

    name = "docmath"
    paper_metric = "cover_em"
    official_metric = "docmath"
    breakdowns = ("subset",)
    use_judge = True
    subsets = ("all", *SUBSETS)
    """`subset` values: one testmini subset, or "all" (the default: the paper's 800)."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        chosen = resolve_subset(self.name, subset, self.subsets, "all")
        wanted = SUBSETS if chosen == "all" else (chosen,)
        samples = [
            self._sample(row, part)
            for part, rows in self._sources(path, chosen, wanted)
            for row in rows
        ]
        return fill_context_tokens(samples, count_tokens)

    def _sources(
        self, path: Path | None, chosen: str, wanted: tuple[str, ...]
    ) -> Iterator[tuple[str, Iterator[Row]]]:
        if path is None:
            for part in wanted:
                yield part, hub_rows(HUB_REPO, f"{part}_testmini")
            return
        require_path(path, "DocMath-Eval testmini files")
        if path.is_file():
            part = _subset_from_name(path) or (None if chosen == "all" else chosen)
            if part is None:
                raise DatasetError(
                    f"{path}: cannot tell the DocMath subset from the file name; "
                    f"name it like complong_testmini.json or pass subset"
                )
            if part not in wanted:
                raise DatasetError(
                    f"{path}: holds DocMath subset {part!r}, not the requested {chosen!r}"
                )
            yield part, read_rows(path)
            return
        for part in wanted:
            files = _subset_files(path, part)
            if not files:
                raise DatasetError(
                    f"{path}: no file for DocMath subset {part!r} (expected {part}_testmini.json, "
                    f".jsonl or {part}_testmini-*.parquet, here or under data/)"
                )
            for file in files:
                yield part, read_rows(file)

    def _sample(self, row: Row, part: str) -> TaskSample:
        question_id = row.text("question_id")
        paragraphs = row.text_list("paragraphs")
        tables = row.text_list("tables", allow_empty=True) if row.has("tables") else []
        ground_truth = row.number("ground_truth")
        return TaskSample(
            id=f"{part}/{question_id}",
            task_type="numerical",
            question=row.text("question"),
            answers=[number_text(ground_truth)],
            answer_kind="number",
            context="\n".join([*paragraphs, *tables]),
            provenance=Provenance(generator=self.name),
            meta={"subset": part, "question_id": question_id},
        )
