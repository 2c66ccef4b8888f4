"""Verification checks against scripted chat models whose right answers are known in advance."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from qwenlong.core.errors import BackendUnavailable, ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, Provenance, TaskSample
from qwenlong.evals.prompts import DOCUMENT_TEMPLATE
from qwenlong.evals.solver import SinglePassSolver
from qwenlong.synth.verify import (
    VerifyConfig,
    grounding_check,
    robustness_check,
    verify_samples,
)

EMPTY_DOCUMENT = DOCUMENT_TEMPLATE.format(context="")

Policy = Callable[[str, bool, int], str]
"""(question found in the prompt, whether the prompt has a document, completion index) -> text."""


class ScriptedModel:
    """A `ChatModel` that answers each question by a policy; records every call."""

    name = "scripted"

    def __init__(self, samples: Sequence[TaskSample], policy: Policy) -> None:
        self.questions = [s.question for s in samples]
        self.policy = policy
        self.calls: list[tuple[list[Conversation], SamplingParams]] = []

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append((list(conversations), sampling))
        out = []
        for conversation in conversations:
            prompt = conversation[-1]["content"]
            question = next(q for q in self.questions if f"Question: {q}" in prompt)
            has_doc = EMPTY_DOCUMENT not in prompt
            out.append([Completion(self.policy(question, has_doc, k)) for k in range(sampling.n)])
        return out

    def close(self) -> None:
        pass


GOLD = {"Who founded Vell?": "Ana Lorr", "When did Kest open?": "1987", "Which option?": "C"}


def samples() -> list[TaskSample]:
    text = TaskSample(
        id="t",
        task_type="multihop",
        question="Who founded Vell?",
        answers=["Ana Lorr"],
        context="Vell was founded by Ana Lorr.",
        provenance=Provenance(generator="kg"),
    )
    number = TaskSample(
        id="n",
        task_type="numerical",
        question="When did Kest open?",
        answers=["1987"],
        answer_kind="number",
        context="Kest opened in 1987.",
        provenance=Provenance(generator="sql"),
    )
    return [text, number]


def answer(question: str) -> str:
    return f"</think>Therefore, the answer is {GOLD[question]}."


def knows_everything(question: str, has_doc: bool, k: int) -> str:
    return answer(question)


def reads_documents(question: str, has_doc: bool, k: int) -> str:
    return answer(question) if has_doc else "</think>Therefore, the answer is unknown."


def never_answers(question: str, has_doc: bool, k: int) -> str:
    return "</think>I cannot tell."


def config(**overrides: object) -> VerifyConfig:
    return VerifyConfig(k=4, max_new_tokens=32, chunk_size=1).model_copy(update=overrides)


def test_a_model_that_knows_the_answers_without_documents_drops_them() -> None:
    batch = samples()
    model = ScriptedModel(batch, knows_everything)
    result = grounding_check(batch, SinglePassSolver(model), 4, config=config())
    assert result.kept == []
    assert [(d.sample_id, d.reason, d.stage) for d in result.drops] == [
        ("t", "grounding", "verify"),
        ("n", "grounding", "verify"),
    ]
    assert result.drops[0].detail == "4/4 correct without the documents"
    prompts = [c[-1]["content"] for conversations, _ in model.calls for c in conversations]
    assert all(EMPTY_DOCUMENT in p and "founded by" not in p for p in prompts)


def test_grounding_keeps_what_needs_the_documents_and_records_it() -> None:
    batch = samples()
    model = ScriptedModel(batch, reads_documents)
    result = grounding_check(batch, SinglePassSolver(model), 4, config=config())
    assert [s.id for s in result.kept] == ["t", "n"] and result.drops == []
    assert result.kept[0].meta["grounding_passes"] == "0/4"
    assert result.kept[0].context == batch[0].context  # the kept sample keeps its context


def test_a_model_that_never_answers_fails_robustness() -> None:
    batch = samples()
    result = robustness_check(
        batch, SinglePassSolver(ScriptedModel(batch, never_answers)), 4, config=config()
    )
    assert result.kept == [] and {d.reason for d in result.drops} == {"robustness"}
    assert result.drops[0].detail == "0/4 correct with the context"


def test_robustness_pass_rate_becomes_difficulty() -> None:
    batch = samples()

    def half_right(question: str, has_doc: bool, k: int) -> str:
        return answer(question) if k % 2 == 0 else "</think>Therefore, the answer is 12."

    result = robustness_check(
        batch, SinglePassSolver(ScriptedModel(batch, half_right)), 4, config=config()
    )
    assert [s.difficulty for s in result.kept] == [0.5, 0.5]
    assert result.kept[0].meta["pass_rate"] == "0.5" and result.kept[0].meta["passes"] == "2/4"
    assert result.records["n"].values == (1.0, 0.0, 1.0, 0.0)


def test_chance_level_multiple_choice_survives_a_raised_grounding_threshold() -> None:
    mc = TaskSample(
        id="mc",
        task_type="mc",
        question="Which option?",
        answers=["C"],
        answer_kind="choice",
        choices=["w", "x", "y", "z"],
        context="doc",
    )

    def guesses(question: str, has_doc: bool, k: int) -> str:
        return f"The correct answer is ({'ABCD'[k]})"

    solver = SinglePassSolver(ScriptedModel([mc], guesses))
    assert grounding_check([mc], solver, 4, config=config()).drops[0].detail.startswith("1/4")
    assert grounding_check([mc], solver, 4, config=config(grounding_max_pass_rate=0.5)).kept


def test_dense_near_misses_pass_only_below_pass_value() -> None:
    needle = TaskSample(
        id="dlg",
        task_type="dialogue_memory",
        question="Repeat the poem.",
        answers=["ab1 roses are red violets are blue"],
        answer_kind="sequence",
        context="…",
        meta={"prefix": "ab1"},
    )

    def near_miss(question: str, has_doc: bool, k: int) -> str:
        return "ab1 roses are red violets are blu"

    solver = SinglePassSolver(ScriptedModel([needle], near_miss))
    assert robustness_check([needle], solver, 2, config=config()).kept == []
    kept = robustness_check([needle], solver, 2, config=config(pass_value=0.9)).kept
    assert kept[0].difficulty == 1.0


def test_sampling_follows_the_config() -> None:
    batch = samples()
    model = ScriptedModel(batch, reads_documents)
    grounding_check(batch, SinglePassSolver(model), 3, config=config(temperature=0.3, seed=5))
    sampling = model.calls[0][1]
    assert (sampling.n, sampling.temperature, sampling.max_new_tokens, sampling.seed) == (
        3,
        0.3,
        32,
        5,
    )
    assert len(model.calls) == 2  # chunk_size 1: one call per sample


def test_verify_samples_runs_both_checks_and_resumes_from_its_stores(tmp_path: Path) -> None:
    batch = samples()
    model = ScriptedModel(batch, reads_documents)
    first = verify_samples(batch, model, config(), tmp_path)
    assert [s.id for s in first.samples] == ["t", "n"] and first.drops == []
    assert first.mode == "scripted, k=4: grounding, robustness"
    assert len(model.calls) == 4
    lines = (tmp_path / "robustness.jsonl").read_text().splitlines()
    assert [json.loads(line)["passes"] for line in lines] == [4, 4]

    silent = ScriptedModel(batch, never_answers)
    again = verify_samples(batch, silent, config(), tmp_path)
    assert silent.calls == [] and again.samples == first.samples


def test_a_killed_run_asks_only_the_unfinished_questions(tmp_path: Path) -> None:
    batch = samples()

    class DiesAfterOneCall(ScriptedModel):
        def generate(self, conversations, sampling):
            if self.calls:
                raise BackendUnavailable("server went away")
            return super().generate(conversations, sampling)

    with pytest.raises(BackendUnavailable):
        verify_samples(batch, DiesAfterOneCall(batch, reads_documents), config(), tmp_path)
    assert len((tmp_path / "grounding.jsonl").read_text().splitlines()) == 1
    model = ScriptedModel(batch, reads_documents)
    result = verify_samples(batch, model, config(), tmp_path)
    asked = [c[-1]["content"] for conversations, _ in model.calls for c in conversations]
    assert len(asked) == 3 and "Kest" in asked[0]  # grounding of n, then robustness of both
    assert [s.id for s in result.samples] == ["t", "n"]


def test_a_store_made_with_another_k_is_refused(tmp_path: Path) -> None:
    batch = samples()
    verify_samples(batch, ScriptedModel(batch, reads_documents), config(), tmp_path)
    with pytest.raises(ConfigError, match="sample t was verified with k=4, the config asks k=2"):
        verify_samples(batch, ScriptedModel(batch, reads_documents), config(k=2), tmp_path)


def test_without_a_model_or_when_disabled_the_checks_are_skipped() -> None:
    batch = samples()
    none = verify_samples(batch, None, config())
    assert none.samples == batch and none.mode == "skipped (no LLM)"
    model = ScriptedModel(batch, never_answers)
    off = verify_samples(batch, model, config(enabled=False))
    assert off.samples == batch and off.mode == "skipped (disabled)" and model.calls == []
