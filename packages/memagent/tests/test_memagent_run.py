"""`qwenlong memagent`: smoke runs with the tiny model, the CLI, and input validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from qwenlong.app.commands.memagent import document_overrides, register
from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.memagent.chunking import iter_chunks
from qwenlong.memagent.interfaces import KEEPS_PREVIOUS_MEMORY
from qwenlong.memagent.run import MemAgentRunConfig, run_memagent
from qwenlong.memagent.solver import MemAgentSolver

AGENT = {
    "chunk_tokens": 64,
    "memory_tokens": 32,
    "plan_tokens": 16,
    "step": {"max_new_tokens": 12},
    "final_max_tokens": 8,
}
"""Budgets small enough for the random tiny model on two CPU cores."""


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doc") / "doc.txt"
    path.write_text("".join(synthetic_corpus(7, 6))[:700], encoding="utf-8")
    return path


def test_tiny_model_reads_a_document_file_chunk_by_chunk(
    tiny_chat_model, tiny_model_dir, document, tmp_path
):
    n_chunks = len(list(iter_chunks(document.read_text(), tiny_chat_model.tokenizer, 64)))
    assert n_chunks >= 3
    config = MemAgentRunConfig(
        model=BackendConfig(model=str(tiny_model_dir)),
        memagent=AGENT,
        sampling={"max_new_tokens": 8, "temperature": 0.0},
        samples_per_question=2,
        document={"path": document, "question": "Which island is named? Answer in one word."},
    )
    summary = run_memagent(config, tmp_path / "run", model=tiny_chat_model)
    assert summary["samples"] == 1 and summary["routes"] == {"agent": 2}
    assert summary["n_steps"] == 2 * n_chunks
    steps = [r for r in _lines(tmp_path / "run" / "trace.jsonl") if r["kind"] == "step"]
    assert sorted((s["lane"], s["step"]) for s in steps) == [
        (lane, t) for lane in (0, 1) for t in range(n_chunks)
    ]
    for step in steps:  # a random model writes no tags: every failure is named and recorded
        assert step["status"] in {"ok", "repaired", *KEEPS_PREVIOUS_MEMORY}
        assert step["output_tokens"] <= 12
        assert (step["raw_output"] is not None) == (step["status"] in KEEPS_PREVIOUS_MEMORY)
    assert summary["failed_steps"] == sum(s["status"] in KEEPS_PREVIOUS_MEMORY for s in steps)
    [prediction] = _lines(tmp_path / "run" / "predictions.jsonl")
    assert prediction["id"] == "document" and len(prediction["outputs"]) == 2
    assert "score" not in prediction  # no gold answers given


def test_tiny_model_through_the_solver_batched(tiny_chat_model):
    from qwenlong.core.records import TaskSample

    text = "".join(synthetic_corpus(3, 10))
    samples = [
        TaskSample(
            id=f"s{i}", task_type="reading", question="Who?", answers=["x"], context=text[:size]
        )
        for i, size in enumerate((150, 400, 650))
    ]
    solver = MemAgentSolver(tiny_chat_model, **AGENT)
    outputs = solver.solve(samples, SamplingParams(max_new_tokens=8, temperature=0.0, seed=1))
    lengths = [len(list(iter_chunks(s.context, tiny_chat_model.tokenizer, 64))) for s in samples]
    assert len(set(lengths)) == 3  # three lengths: three different finishing steps
    assert [len(per[0].trace) for per in outputs] == lengths
    assert all(per[0].output_tokens is not None and per[0].output_tokens <= 8 for per in outputs)


def test_cli_runs_a_document_and_question(tiny_model_dir, document, tmp_path):
    config = tmp_path / "memagent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "backend": "hf",
                    "model": str(tiny_model_dir),
                    "hf": {"torch_threads": 1},
                },
                "memagent": AGENT,
                "sampling": {"max_new_tokens": 8, "temperature": 0.0},
            }
        )
    )
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `memagent` a subcommand
    result = CliRunner().invoke(
        app,
        [
            "memagent",
            str(config),
            "--out",
            str(tmp_path / "run"),
            "--document",
            str(document),
            "--question",
            'Which "island": the first one? Answer with a name.',
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[0])
    assert summary["samples"] == 1 and summary["answered_now"] == 1
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["document"]["question"] == 'Which "island": the first one? Answer with a name.'
    assert saved["dataset"] is None


def test_document_overrides_keep_the_question_verbatim(tmp_path):
    question = 'Q: what\'s [x] {y}, "z" and 漢? Answer: briefly.\nSecond line'
    config = load_config_dict(
        {"model": {"model": "m"}, "dataset": {"path": "d.parquet"}},
        MemAgentRunConfig,
        "x.yaml",
        document_overrides(tmp_path / "a b.txt", question),
    )
    assert config.document.question == question and config.dataset is None
    assert config.document.path == tmp_path / "a b.txt"


def test_exactly_one_input_is_required():
    with pytest.raises(ConfigError, match="set exactly one of dataset, benchmark, document"):
        load_config_dict({"model": {"model": "m"}}, MemAgentRunConfig, "x.yaml")
    with pytest.raises(ConfigError, match=r"got dataset, document"):
        load_config_dict(
            {
                "model": {"model": "m"},
                "dataset": {"path": "d"},
                "document": {"path": "f", "question": "q"},
            },
            MemAgentRunConfig,
            "x.yaml",
        )


def test_prompt_templates_are_checked_when_the_config_loads(tmp_path):
    final = tmp_path / "final.txt"
    final.write_text("Notes: $memory\n")  # no $problem
    base = {"model": {"model": "m"}, "dataset": {"path": "d"}}
    with pytest.raises(ConfigError, match=r"final\.txt: the 'memagent_final' prompt must use "):
        load_config_dict(
            {**base, "prompts": {"memagent_final": str(final)}}, MemAgentRunConfig, "x"
        )
    final.write_text("Problem: $problem\nNotes: $memory\n")
    config = load_config_dict(
        {**base, "prompts": {"memagent_final": str(final)}}, MemAgentRunConfig, "x"
    )
    assert config.prompts.template("memagent_final").source == str(final)
