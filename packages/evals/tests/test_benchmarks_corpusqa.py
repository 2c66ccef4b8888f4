"""CorpusQA loading: un-baking the published prompt, gold forms, sizes, malformed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.benchmarks import get_benchmark

DOCS = "Intro line.\n\n# Document 1:\nAcme revenue 12.\n# Document 2:\nBeta revenue 30."
QUESTION = "Which firms earned over 10?"
REQUIREMENTS = "Output requirements:\n- Finish with 'The answer is: x'."


def _row(ident: str = "financial_en_1", **extra: object) -> dict:
    row = {
        "id": ident,
        "prompt": [
            {"role": "system", "content": "You are an analyst."},
            {"role": "user", "content": f"{DOCS}\n\n# Question:\n{QUESTION}\n\n{REQUIREMENTS}"},
        ],
        "question": QUESTION,
        "answer": ["Acme", "Beta"],
        "set": "128k",
        "domain": "financial_en",
        "doc_files": ["acme.pdf", "beta.pdf"],
        "type": "",
    }
    row.update(extra)
    return row


def _file(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompt_is_split_into_context_question_and_requirements(tmp_path: Path) -> None:
    _file(tmp_path / "128k_4domains.jsonl", [_row()])
    (sample,) = get_benchmark("corpusqa").load(tmp_path)
    assert sample.id == "financial_en_1"
    assert sample.context == DOCS
    assert sample.question == QUESTION and sample.instruction == ""
    assert sample.answers == ["Acme, Beta"]  # one gold: the whole list
    assert (sample.task_type, sample.answer_kind) == ("numerical", "text")
    assert sample.meta == {
        "domain": "financial_en",
        "size": "128K",
        "requirements": REQUIREMENTS,
        "system_prompt": "You are an analyst.",
        "official_gold": "['Acme', 'Beta']",
    }
    assert sample.provenance.source_documents == ["acme.pdf", "beta.pdf"]


@pytest.mark.parametrize(
    ("answer", "golds", "kind"),
    [
        (3, ["3"], "number"),
        (2.5, ["2.5"], "number"),
        ("Acme", ["Acme"], "text"),
        ([], [], "text"),
        ([1, "b"], ["1, b"], "text"),
    ],
)
def test_gold_forms(tmp_path: Path, answer: object, golds: list[str], kind: str) -> None:
    path = _file(tmp_path / "x.jsonl", [_row(answer=answer)])
    (sample,) = get_benchmark("corpusqa").load(path)
    assert (sample.answers, sample.answer_kind) == (golds, kind)


def test_domain_falls_back_to_the_id_prefix(tmp_path: Path) -> None:
    row = _row("real_estate_en_9")
    del row["domain"]
    path = _file(tmp_path / "x.jsonl", [row])
    (sample,) = get_benchmark("corpusqa").load(path)
    assert sample.meta["domain"] == "real_estate_en"
    row = _row("mystery_3")
    del row["domain"]
    _file(path, [row])
    with pytest.raises(DatasetError, match="missing field 'domain' and id 'mystery_3'"):
        get_benchmark("corpusqa").load(path)


def test_sizes_pick_the_published_file(tmp_path: Path) -> None:
    _file(tmp_path / "1m_4domains.jsonl", [_row("education_en_2", domain="education_en")])
    (sample,) = get_benchmark("corpusqa").load(tmp_path, "1m")
    assert sample.meta["size"] == "1M"
    with pytest.raises(DatasetError, match=r"folder has no 128k_4domains\.jsonl"):
        get_benchmark("corpusqa").load(tmp_path)
    with pytest.raises(ConfigError, match="known: 128K, 1M, 4M"):
        get_benchmark("corpusqa").load(tmp_path, "10M")


def test_prompt_given_as_a_json_string_is_accepted(tmp_path: Path) -> None:
    row = _row()
    row["prompt"] = json.dumps(row["prompt"])
    (sample,) = get_benchmark("corpusqa").load(_file(tmp_path / "x.jsonl", [row]))
    assert sample.context == DOCS


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"prompt": [{"role": "user", "content": "no marker here"}]}, "has no '# Question:'"),
        (
            {"prompt": [{"role": "system", "content": "only system"}]},
            "field 'prompt' has no user message",
        ),
        ({"prompt": "{broken"}, "field 'prompt' is not valid JSON"),
        ({"answer": {"a": 1}}, "field 'answer' must be a number, a string or a list, got dict"),
        ({"domain": "sports_en"}, "field 'domain' must be one of financial_en"),
    ],
)
def test_malformed_rows_name_file_line_and_field(
    tmp_path: Path, override: dict, expected: str
) -> None:
    path = _file(tmp_path / "x.jsonl", [_row(), _row(**override)])
    with pytest.raises(DatasetError) as err:
        get_benchmark("corpusqa").load(path)
    assert str(err.value).startswith(f"dataset error: {path} line 2: ")
    assert expected in str(err.value)
