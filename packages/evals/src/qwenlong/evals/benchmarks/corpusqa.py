"""CorpusQA (Tongyi-Zhiwen/CorpusQA): numerical and aggregate questions over whole corpora.

Published form: one JSON Lines file per context size on the hub, `128k_4domains.jsonl` and
`1m_4domains.jsonl` (329 questions each, four domains: financial_en, financial_zh,
education_en, real_estate_en). A record is `{"id", "prompt", "question", "answer", ...}` with
`domain`, `set`, `doc_files` and `type` alongside. `prompt` is the chat request the official
script sends: a system message and one user message that holds `# Document N:` sections, then
`# Question:` and the question, then an "Output requirements" block (answer format and
conflict rules). The gold `answer` is a value computed by SQL: a number, a string, or a list
(an empty list means no entity qualifies).

The 4M set is not on the hub; a local copy is expected under the same naming,
`4m_4domains.jsonl` (our assumption, since no public copy shows its name).

`path` may be one of those files (its size is taken from `subset`) or a folder holding them.
The context is the document part of the user message, before the last `# Question:` marker;
the requirements block is kept in `meta["requirements"]` and the system message in
`meta["system_prompt"]`, since the question field is the core question only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import (
    TokenCounter,
    fill_context_tokens,
    number_text,
    resolve_subset,
)
from qwenlong.evals.benchmarks.files import Row, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_file

SIZES = ("128K", "1M", "4M")
DOMAINS = ("financial_en", "financial_zh", "education_en", "real_estate_en")
HUB_REPO = "Tongyi-Zhiwen/CorpusQA"
QUESTION_MARKER = "\n# Question:\n"


def file_name(size: str) -> str:
    """The published file name of one size: "128K" -> "128k_4domains.jsonl"."""
    return f"{size.lower()}_4domains.jsonl"


def _messages(row: Row) -> list[dict[str, Any]]:
    prompt = row.raw("prompt")
    if isinstance(prompt, str):  # some re-exports store the message list as a JSON string
        try:
            prompt = json.loads(prompt)
        except json.JSONDecodeError as err:
            raise row.error(f"field 'prompt' is not valid JSON ({err.msg})") from err
    if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
        raise row.error("field 'prompt' must be a list of chat messages")
    return prompt


def _message_text(row: Row, messages: list[dict[str, Any]], role: str) -> str:
    texts = [m.get("content") for m in messages if m.get("role") == role]
    if not texts:
        return ""
    if not isinstance(texts[-1], str):
        raise row.error(f"field 'prompt': the {role} message has no text content")
    return texts[-1]


def _gold(row: Row) -> tuple[list[str], str]:
    """Gold answers for `TaskSample.answers`, and the answer kind.

    A list gold is one answer (all its items together), written as a comma-separated list;
    an empty list gives no gold at all, which records.py allows for exactly this case.
    """
    answer = row.raw("answer")
    if isinstance(answer, bool):
        raise row.error("field 'answer' must be a number, a string or a list, got bool")
    if isinstance(answer, int | float):
        return [number_text(answer)], "number"
    if isinstance(answer, str):
        return [answer], "text"
    if isinstance(answer, list) and all(isinstance(v, str | int | float) for v in answer):
        items = [number_text(v) if isinstance(v, int | float) else v for v in answer]
        return ([", ".join(items)] if items else []), "text"
    raise row.error(
        f"field 'answer' must be a number, a string or a list, got {type(answer).__name__}"
    )


def _domain(row: Row, sample_id: str) -> str:
    if row.has("domain"):
        return row.one_of("domain", DOMAINS)
    # The official eval.py reads the domain from the id prefix; do the same when the field is absent.
    for domain in DOMAINS:
        if sample_id.startswith(domain):
            return domain
    raise row.error(f"missing field 'domain' and id {sample_id!r} starts with no known domain")


class CorpusQA:
    """CorpusQA. Paper: max(cover-EM, judge); official: the [[YES]]/[[NO]] judge alone."""

    name = "corpusqa"
    paper_metric = "cover_em"
    official_metric = "corpusqa"
    breakdowns = ("domain",)
    use_judge = True
    subsets = SIZES
    """`subset` values: the context size; "128K" is the default (the paper's main column)."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        size = resolve_subset(self.name, subset, self.subsets, "128K")
        if path is None:
            file = hub_file(HUB_REPO, file_name(size))
        else:
            require_path(path, f"CorpusQA {file_name(size)}")
            file = path / file_name(size) if path.is_dir() else path
            if not file.is_file():
                raise DatasetError(f"{path}: folder has no {file_name(size)}")
        samples = [self._sample(row, size) for row in read_rows(file)]
        return fill_context_tokens(samples, count_tokens)

    def _sample(self, row: Row, size: str) -> TaskSample:
        sample_id = row.text("id")
        question = row.text("question")
        messages = _messages(row)
        user = _message_text(row, messages, "user")
        if not user:
            raise row.error("field 'prompt' has no user message")
        documents, marker, tail = user.rpartition(QUESTION_MARKER)
        if not marker:
            raise row.error(f"field 'prompt': the user message has no {QUESTION_MARKER.strip()!r}")
        requirements = tail[len(question) :] if tail.startswith(question) else tail
        answers, kind = _gold(row)
        return TaskSample(
            id=sample_id,
            task_type="numerical",
            question=question,
            answers=answers,
            answer_kind=kind,
            context=documents.rstrip(),
            provenance=Provenance(
                generator=self.name,
                source_documents=row.text_list("doc_files", allow_empty=True)
                if row.has("doc_files")
                else [],
            ),
            meta={
                "domain": _domain(row, sample_id),
                "size": size,
                "requirements": requirements.strip(),
                "system_prompt": _message_text(row, messages, "system"),
                "official_gold": str(row.raw("answer")),
            },
        )
