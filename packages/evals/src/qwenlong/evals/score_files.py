"""Score or extract a JSONL file of predictions, line by line (`qwenlong eval score|extract`).

This is how predictions from anywhere (another harness, an official script's output) are graded
by our metrics, and how an extractor's behaviour is checked on real responses. Input lines:

- `score_jsonl`: {"prediction": str, "answers": [str | number, ...]} plus "dataset" (str) for
  longbench_f1 and "prefix" (str) for mrcr; an optional "id" is echoed back.
- `extract_jsonl`: {"response": str}.

By default every metric grades the text after the reasoning (`</think>`) and DocMath reads its
number with the paper's extractor, standing in for the official GPT extraction; `raw=True`
grades each prediction exactly as given, the way the official scorer grades what it is handed
(`RAW_OPTIONS`). Numbers in "answers" become `str(number)` of the JSON value: 12 -> "12", 12.0 -> "12.0",
0.1 -> "0.1". That is exactly the string QwenLong-L1 builds from a DocMath gold
(`str(ground_truth)`), and `float()` of it is the float DocMath-Eval compares against, so
numeric golds keep their value. Blank lines are skipped; any other bad line raises a one-line
`DatasetError` naming the file, the line and the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import EXTRACTORS
from qwenlong.evals.interfaces import Scorer
from qwenlong.evals.metrics import make_scorer

REQUIRED_META: dict[str, tuple[str, ...]] = {"longbench_f1": ("dataset",), "mrcr": ("prefix",)}
"""Per-metric keys a line must carry, copied into `TaskSample.meta`."""

RAW_OPTIONS: dict[str, dict[str, Any]] = {
    "longbench_f1": {"strip_reasoning": False},
    "longbench_v2": {"strip_reasoning": False},
    "mrcr": {"strip_reasoning": False},
    "corpusqa": {"strip_reasoning": False},
    "docmath": {"extract_answer": False},
    "docmath_strict": {"extract_answer": False},
}
"""Metric options of `raw=True`: no reasoning split, no stand-in extraction, so each official
scorer is reproduced on exactly the text it is given (with its quirks, e.g. DocMath's empty
answer matching a gold of 0). cover_em and sub_em are absent: the paper's metric takes the
text after `</think>` by its own definition, so raw changes nothing for them."""


def _lines(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, location "file:line", parsed object) for every non-blank line of `path`."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise DatasetError(f"{path}: cannot open ({err.strerror or err})") from err
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{where}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield number, where, record


def _string(record: dict[str, Any], key: str, where: str) -> str:
    if key not in record:
        raise DatasetError(f"{where}: missing key {key!r}")
    value = record[key]
    if not isinstance(value, str):
        raise DatasetError(f"{where}: key {key!r} must be a string, got {type(value).__name__}")
    return value


def _answers(record: dict[str, Any], where: str) -> list[str]:
    if "answers" not in record:
        raise DatasetError(f"{where}: missing key 'answers'")
    answers = record["answers"]
    if not isinstance(answers, list):
        raise DatasetError(f"{where}: key 'answers' must be a list, got {type(answers).__name__}")
    converted = []
    for i, answer in enumerate(answers):
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise DatasetError(
                f"{where}: answers[{i}] must be a string or a number, got {type(answer).__name__}"
            )
        converted.append(answer if isinstance(answer, str) else str(answer))
    return converted


def score_jsonl(
    metric: str, path: Path, raw: bool = False, **options: Any
) -> Iterator[dict[str, Any]]:
    """Yield one result per line: {"line", "id"?, "score", "correct", "extracted", ...details}.

    `raw` applies `RAW_OPTIONS[metric]` under `options`. The metric is built here, so unknown
    names or options raise `ConfigError` at the call, before the file is read. Errors a metric
    raises about a line's gold (e.g. a DocMath gold that is not a number) are re-raised with
    the line's location.
    """
    if raw:
        options = {**RAW_OPTIONS.get(metric, {}), **options}
    scorer = make_scorer(metric, **options)
    return _score_lines(scorer, REQUIRED_META.get(metric, ()), path)


def _score_lines(
    scorer: Scorer, meta_keys: tuple[str, ...], path: Path
) -> Iterator[dict[str, Any]]:
    for number, where, record in _lines(path):
        prediction = _string(record, "prediction", where)
        sample = TaskSample(
            id=str(record.get("id", where)),
            task_type="",
            question="",
            answers=_answers(record, where),
            meta={key: _string(record, key, where) for key in meta_keys},
        )
        try:
            score = scorer(sample, prediction)
        except DatasetError as err:
            message = str(err.args[0])
            if "id" not in record:  # the location already names the line
                message = message.removeprefix(f"sample {sample.id!r}: ")
            raise DatasetError(f"{where}: {message}") from err
        result: dict[str, Any] = {"line": number}
        if "id" in record:
            result["id"] = record["id"]
        result.update(score=score.value, correct=score.correct)
        result.update({"extracted": None, **score.details})
        yield result


def extract_jsonl(extractor: str, path: Path) -> Iterator[dict[str, Any]]:
    """Yield {"line", "extracted"} for each line's "response", using EXTRACTORS[extractor].

    An unknown extractor raises `ConfigError` at the call, before the file is read.
    """
    extract = EXTRACTORS.get(extractor)
    return (
        {"line": number, "extracted": extract(_string(record, "response", where))}
        for number, where, record in _lines(path)
    )
