"""OpenAI MRCR (openai/mrcr): reproduce the i-th of several near-identical writings in a chat.

Published form: parquet shards `{2,4,8}needle/{n}needle_{k}.parquet` (older copies:
`{n}needle.parquet`), columns `prompt` (the conversation as a JSON string of `{role, content}`
messages, ending with the user's request), `answer` (the random prefix followed by the
requested writing), `random_string_to_prepend`, `n_needles`, `desired_msg_index`,
`total_messages`, `n_chars` and `date_added`.

The dataset card bins results by the token count of prompt plus answer (the sum over message
contents, plus the answer): [4K,8K], (8K,16K], ..., (512K,1M]. Those bins need the target
tokenizer; when `count_tokens` is not given the count is estimated as characters / 4 (from the
`n_chars` column when present) and `meta["token_count_source"]` says which was used. Counts
below 4K fall outside the official bins and are labelled "0-4K"; counts over 1M "1M+".

`subset` picks a coarse range: "0-128K" (default, the paper's main column), "128K-512K",
"512K-1M", or "all". `path` may be one shard or a folder searched recursively for `*.parquet`
(or, failing that, `*.jsonl` holding the same columns).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import TokenCounter, fill_context_tokens, resolve_subset
from qwenlong.evals.benchmarks.files import Row, find_files, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_rows

K = 1024
OFFICIAL_BINS = (
    ("4K-8K", 8 * K),
    ("8K-16K", 16 * K),
    ("16K-32K", 32 * K),
    ("32K-64K", 64 * K),
    ("64K-128K", 128 * K),
    ("128K-256K", 256 * K),
    ("256K-512K", 512 * K),
    ("512K-1M", 1024 * K),
)
"""(label, inclusive upper bound); the first bin also includes its lower bound 4K."""
RANGES = (("0-128K", 128 * K), ("128K-512K", 512 * K), ("512K-1M", 1024 * K))
"""The coarse ranges the paper reports, as (label, inclusive upper bound)."""
ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
CHARS_PER_TOKEN = 4
"""Fallback estimate when no tokenizer is given: about 4 characters per token (English BPE)."""
HUB_REPO = "openai/mrcr"


def token_bin(tokens: int) -> str:
    """The official bin of a prompt+answer token count, "0-4K" below and "1M+" above them."""
    if tokens < 4 * K:
        return "0-4K"
    return next((label for label, upper in OFFICIAL_BINS if tokens <= upper), "1M+")


def token_range(tokens: int) -> str:
    """The coarse range ("0-128K", "128K-512K", "512K-1M" or "1M+") of a token count."""
    return next((label for label, upper in RANGES if tokens <= upper), "1M+")


def render_conversation(messages: list[dict[str, str]]) -> str:
    """Turns as "User: ..." / "Assistant: ..." blocks separated by blank lines."""
    return "\n\n".join(f"{ROLE_LABELS[m['role']]}: {m['content']}" for m in messages)


def _messages(row: Row) -> list[dict[str, str]]:
    prompt: Any = row.raw("prompt")
    if isinstance(prompt, str):
        try:
            prompt = json.loads(prompt)
        except json.JSONDecodeError as err:
            raise row.error(
                f"field 'prompt' is not valid JSON ({err.msg}, char {err.pos})"
            ) from err
    if not isinstance(prompt, list) or not prompt:
        raise row.error("field 'prompt' must be a non-empty list of chat messages")
    for number, message in enumerate(prompt):
        if not isinstance(message, dict) or message.get("role") not in ROLE_LABELS:
            raise row.error(
                f"field 'prompt' message {number} has no role among {', '.join(ROLE_LABELS)}"
            )
        if not isinstance(message.get("content"), str):
            raise row.error(f"field 'prompt' message {number} has no text 'content'")
    if prompt[-1]["role"] != "user":
        raise row.error(
            f"field 'prompt' must end with the user's request, ends with {prompt[-1]['role']!r}"
        )
    return prompt


class MRCR:
    """OpenAI MRCR. Paper and official: SequenceMatcher ratio behind the random-prefix rule."""

    name = "mrcr"
    paper_metric = "mrcr"
    official_metric = "mrcr"
    breakdowns = ("bin", "n_needles")
    use_judge = False
    subsets = ("0-128K", "128K-512K", "512K-1M", "all")
    """`subset` values: a coarse token range, or "all"; "0-128K" is the default."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        chosen = resolve_subset(self.name, subset, self.subsets, "0-128K")
        samples = []
        for label, rows in self._sources(path):
            for index, row in enumerate(rows):
                sample = self._sample(row, f"{label}-{index}", chosen, count_tokens)
                if sample is not None:
                    samples.append(sample)
        return fill_context_tokens(samples, count_tokens)

    @staticmethod
    def _sources(path: Path | None) -> Iterator[tuple[str, Iterator[Row]]]:
        if path is None:
            yield "train", hub_rows(HUB_REPO, "train")
            return
        require_path(path, "MRCR parquet shards")
        if path.is_file():
            yield path.stem, read_rows(path)
            return
        files = find_files(path, ["**/*.parquet", "**/*.jsonl"])
        if not files:
            raise DatasetError(f"{path}: folder has no MRCR *.parquet (or *.jsonl) file")
        for file in files:
            yield file.stem, read_rows(file)

    def _sample(
        self, row: Row, sample_id: str, chosen: str, count_tokens: TokenCounter | None
    ) -> TaskSample | None:
        answer = row.text("answer")
        messages = _messages(row)
        if count_tokens is not None:
            tokens = sum(count_tokens(m["content"]) for m in messages) + count_tokens(answer)
            source = "count_tokens"
        else:
            chars = (
                row.integer("n_chars")
                if row.has("n_chars")
                else sum(len(m["content"]) for m in messages)
            )
            tokens = math.ceil((chars + len(answer)) / CHARS_PER_TOKEN)
            source = "chars/4"
        if chosen != "all" and token_range(tokens) != chosen:
            return None
        return TaskSample(
            id=sample_id,
            task_type="dialogue_memory",
            question=messages[-1]["content"],
            answers=[answer],
            answer_kind="sequence",
            context=render_conversation(messages[:-1]),
            provenance=Provenance(generator=self.name),
            meta={
                "bin": token_bin(tokens),
                "range": token_range(tokens),
                "token_count": str(tokens),
                "token_count_source": source,
                "prefix": row.text("random_string_to_prepend"),
                "n_needles": str(row.integer("n_needles")),
                "desired_msg_index": str(row.integer("desired_msg_index")),
                "messages": json.dumps(messages, ensure_ascii=False),
            },
        )
