"""`solver: memagent` (and `routed`) through the evals runner, with a note-taking stub model."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.records import Completion
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.benchmarks.examples import write_examples
from qwenlong.evals.run.config import BenchmarkRun, EvalConfig
from qwenlong.evals.run.runner import run_eval
from qwenlong.memagent.prompts import FINAL_INTRO, UPDATE_INTRO


class NoteTaker:
    """Copies each section into the memory; answers from the memory alone.

    The final answer is a gold answer (or the letter of an option) only when that text is in
    the memory, so a correct score shows the document reached the final prompt through the
    agent's memory. Single-pass prompts are answered "unknown".
    """

    name = "note-taker"

    def __init__(self, golds: dict[str, tuple[list[str], list[str]]]) -> None:
        self.golds = golds  # question -> (answers, choices)
        self.kinds: list[str] = []

    def generate(self, conversations, sampling):
        return [[self._reply(c[-1]["content"])] * sampling.n for c in conversations]

    def _reply(self, prompt: str) -> Completion:
        if prompt.startswith(UPDATE_INTRO):
            self.kinds.append("update")
            section = prompt.split('">\n', 1)[1].rsplit("\n</section>", 1)[0]
            return Completion(f"<memory>{section}</memory><plan>done</plan>")
        if not prompt.startswith(FINAL_INTRO):
            self.kinds.append("single_pass")
            return Completion("Therefore, the answer is unknown.")
        self.kinds.append("final")
        problem = prompt.split("<problem>\n", 1)[1].split("\n", 1)[0]
        memory = prompt.split("<memory>\n", 1)[1].split("\n</memory>", 1)[0]
        answers, choices = self.golds[problem]
        for letter, choice in zip(string.ascii_uppercase, choices, strict=False):
            if choice in memory and letter in answers:
                return Completion(f"The correct answer is ({letter})")
        found = [a for a in answers if a in memory]
        return Completion(f"Therefore, the answer is {found[0] if found else 'unknown'}.")

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_examples(tmp_path_factory.mktemp("bench"), seed=1, n=4)


def _golds(examples: dict[str, Path], names: list[str]):
    golds = {}
    for name in names:
        for sample in get_benchmark(name).load(examples[name]):
            golds[sample.question] = (sample.answers, sample.choices)
    return golds


def _config(examples, tiny_model_dir, solver: str, names, **sampling) -> EvalConfig:
    return EvalConfig(
        model=BackendConfig(model=str(tiny_model_dir)),
        solver=solver,
        benchmarks=[BenchmarkRun(name=n, path=examples[n]) for n in names],
        sampling={"max_new_tokens": 64, **sampling},
        metrics="paper",
        chunk_size=3,
    )


def test_eval_with_solver_memagent_scores_answers_read_from_memory(
    examples, tiny_model_dir, tmp_path
):
    names = ["frames", "longbench_v2"]
    model = NoteTaker(_golds(examples, names))
    out = tmp_path / "eval"
    scores = run_eval(_config(examples, tiny_model_dir, "memagent", names), out, model=model)
    assert scores["solver"] == "memagent"
    assert {k: v["score"] for k, v in scores["benchmarks"].items()} == {
        "frames": 100.0,
        "longbench_v2": 100.0,
    }
    assert "single_pass" not in model.kinds
    for name in names:
        predictions = [json.loads(line) for line in (out / "predictions" / f"{name}.jsonl").open()]
        for record in predictions:
            [trace] = record["traces"]  # one output, its steps: the short example fits one chunk
            assert [(s["step"], s["status"], s["plan"]) for s in trace] == [(0, "ok", "done")]


def test_eval_with_solver_routed_splits_by_prompt_budget(examples, tiny_model_dir, tmp_path):
    names = ["frames"]
    model = NoteTaker(_golds(examples, names))
    routed = _config(examples, tiny_model_dir, "routed", names, max_input_tokens=100_000)
    scores = run_eval(routed, tmp_path / "all-single", model=model)
    assert set(model.kinds) == {"single_pass"}
    assert scores["benchmarks"]["frames"]["score"] == 0.0  # the stub answers single pass wrong
    model.kinds.clear()
    tight = _config(examples, tiny_model_dir, "routed", names, max_input_tokens=120)
    scores = run_eval(tight, tmp_path / "all-agent", model=model)
    assert "single_pass" not in model.kinds and "final" in model.kinds
    assert scores["benchmarks"]["frames"]["score"] == 100.0
