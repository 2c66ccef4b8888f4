"""LongBench v2 (THUDM/LongBench-v2): 503 four-way multiple-choice questions over long inputs.

Published form: `data.json`, a JSON list of records with `_id`, `domain`, `sub_domain`,
`difficulty` (easy/hard), `length` (short/medium/long), `question`, `choice_A` .. `choice_D`,
`answer` (the letter) and `context`; the hub dataset has the same columns in its `train` split.

`path` may be `data.json` itself, a folder holding it, or the same records as `.jsonl` or
`.parquet`. `subset` keeps one difficulty or one length class ("hard", "long", ...); the default
"all" is the paper's set. The official breakdowns are difficulty and length.
"""

from __future__ import annotations

from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import TokenCounter, fill_context_tokens, resolve_subset
from qwenlong.evals.benchmarks.files import Row, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_rows

LETTERS = ("A", "B", "C", "D")
DIFFICULTIES = ("easy", "hard")
LENGTHS = ("short", "medium", "long")
HUB_REPO = "THUDM/LongBench-v2"


class LongBenchV2:
    """LongBench v2. Paper and official: accuracy on the letter in "The correct answer is (X)"."""

    name = "longbench_v2"
    paper_metric = "longbench_v2"
    official_metric = "longbench_v2"
    breakdowns = ("difficulty", "length")
    use_judge = False
    subsets = ("all", *DIFFICULTIES, *LENGTHS)
    """`subset` values: "all" (default), or one difficulty or length class."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        chosen = resolve_subset(self.name, subset, self.subsets, "all")
        if path is None:
            rows = hub_rows(HUB_REPO, "train")
        else:
            require_path(path, "LongBench v2 data.json")
            file = path / "data.json" if path.is_dir() else path
            if not file.is_file():
                raise DatasetError(f"{path}: folder has no data.json")
            rows = read_rows(file)
        samples = [self._sample(row) for row in rows]
        if chosen != "all":
            samples = [s for s in samples if chosen in (s.meta["difficulty"], s.meta["length"])]
        return fill_context_tokens(samples, count_tokens)

    def _sample(self, row: Row) -> TaskSample:
        return TaskSample(
            id=row.text("_id"),
            task_type="mc",
            question=row.text("question"),
            answers=[row.one_of("answer", LETTERS)],
            answer_kind="choice",
            choices=[row.text(f"choice_{letter}", allow_empty=True) for letter in LETTERS],
            context=row.text("context"),
            provenance=Provenance(generator=self.name),
            meta={
                "difficulty": row.one_of("difficulty", DIFFICULTIES),
                "length": row.one_of("length", LENGTHS),
                "domain": row.text("domain"),
                "sub_domain": row.optional_text("sub_domain"),
            },
        )
