"""MASE rounds with scripted agents: validation, rejection, history, batching, judge, and a smoke
run on the tiny model."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence

import pytest

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, Document, TaskSample
from qwenlong.evals.judge import JUDGE_PROMPT, LLMJudge
from qwenlong.evals.prompts import READ_INSTRUCTION
from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.mase import MaseConfig, MaseGenerator
from qwenlong.synth.mase.prompts import EVOLVE_INSTRUCTION, PROPOSER_INTRO

DOCS = [
    Document("h1", "Ada Lovelace founded Harlow Works in Marrowby.", "general", "Harlow Works"),
    Document("h2", "Harlow Works made looms; Ada Lovelace chaired its board.", "general"),
    Document("s1", "Quentin Abara runs Sunmere Fisheries on the coast.", "professional"),
    Document("s2", "Sunmere Fisheries exported cod, according to Quentin Abara.", "professional"),
]
FACTS = {
    "Harlow Works": [("Who founded Harlow Works?", "Ada Lovelace"), ("Where is it?", "Marrowby")],
    "Sunmere Fisheries": [("Who runs Sunmere Fisheries?", "Quentin Abara"), ("Fish?", "cod")],
}
MC_SUFFIX = " Pick one."
"""Multiple-choice questions differ from their short-answer twins (repeats are dropped)."""
ANSWERS = {q + end: a for pairs in FACTS.values() for q, a in pairs for end in ("", MC_SUFFIX)}
WRONG = ["looms", "the coast", "Tomas", "Priya"]

Script = Callable[[str, int], str]


class ScriptedModel:
    """A `ChatModel` that routes each prompt to a script by who is asking (proposer, solver,
    judge) and records every call as (role, prompts, sampling)."""

    name = "scripted"

    def __init__(self, propose: Script, solve: Script, judge: Script | None = None) -> None:
        self.scripts = {"proposer": propose, "solver": solve, "judge": judge}
        self.calls: list[tuple[str, list[str], SamplingParams]] = []

    @staticmethod
    def role(prompt: str) -> str:
        if prompt.startswith(PROPOSER_INTRO[:30]):
            return "proposer"
        if prompt.startswith(READ_INSTRUCTION):
            return "solver"
        assert prompt.startswith(JUDGE_PROMPT[:30])
        return "judge"

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        prompts = [c[-1]["content"] for c in conversations]
        [role] = {self.role(p) for p in prompts}  # one role per batched call
        self.calls.append((role, prompts, sampling))
        script = self.scripts[role]
        assert script is not None
        return [[Completion(script(p, k)) for k in range(sampling.n)] for p in prompts]

    def close(self) -> None:
        pass

    def prompts(self, role: str, call: int) -> list[str]:
        return [prompts for r, prompts, _ in self.calls if r == role][call]


def _subject(prompt: str) -> str:
    return next(name for name in FACTS if name in prompt)


def propose_by_round(prompt: str, k: int) -> str:
    """First fact of the cluster; the second once the proposer is pushed to evolve. MC when the
    form asks for choices, with the right answer listed first."""
    question, answer = FACTS[_subject(prompt)][1 if EVOLVE_INSTRUCTION in prompt else 0]
    if '"choices"' in prompt:
        choices = [answer, *WRONG[:3]]
        return json.dumps({"question": question + MC_SUFFIX, "choices": choices, "answer": "A"})
    return f"```json\n{json.dumps({'question': question, 'answer': answer})}\n```"


def solve_right(prompt: str, k: int) -> str:
    question = re.search(r"Question: (.*)", prompt).group(1)
    answer = ANSWERS[question]
    option = re.search(rf"\(([A-D])\) {re.escape(answer)}\n", prompt + "\n")
    if option:
        return f"It says so. The correct answer is ({option.group(1)})"
    return f"Reading the text. Therefore, the answer is {answer}."


def solve_wrong(prompt: str, k: int) -> str:
    return "Therefore, the answer is Tomas. The correct answer is (E)"


def solve_once(prompt: str, k: int) -> str:
    """Right only in the first of the k samples: pass rate 1/k."""
    return solve_right(prompt, k) if k == 0 else solve_wrong(prompt, k)


def _config(**overrides) -> MaseConfig:
    settings = {
        "tasks": ("viewpoint",),
        "forms": ("short",),
        "rounds": 1,
        "proposals_per_round": 1,
        "solver_samples": 4,
    }
    return MaseConfig(**{**settings, **overrides})


def _run(
    model, config: MaseConfig, judge=None, seed: int = 0
) -> tuple[MaseGenerator, list[TaskSample]]:
    generator = MaseGenerator(config, judge=judge)
    corpus = Corpus(list(DOCS), lambda text: len(text.split()))
    ctx = GenerationContext(rng=random.Random(seed), llm=model, log=lambda _: None)
    return generator, list(generator.generate(corpus, ctx))


def test_without_llm_nothing_is_generated_and_the_mode_says_so() -> None:
    generator = MaseGenerator(_config())
    ctx = GenerationContext(rng=random.Random(0), llm=None)
    assert list(generator.generate(Corpus(list(DOCS), len), ctx)) == []
    assert generator.mode == "skipped (no LLM)"


def test_validated_pairs_become_candidate_samples() -> None:
    model = ScriptedModel(propose_by_round, solve_right)
    generator, samples = _run(model, _config())
    assert generator.mode == "llm"
    assert sorted((s.question, s.answers[0]) for s in samples) == [
        ("Who founded Harlow Works?", "Ada Lovelace"),
        ("Who runs Sunmere Fisheries?", "Quentin Abara"),
    ]
    founded = next(s for s in samples if "Harlow" in s.question)
    assert sorted(founded.provenance.source_documents) == ["h1", "h2"]
    assert (founded.task_type, founded.answer_kind, founded.context) == ("reading", "text", "")
    assert founded.provenance.generator == "mase"
    assert founded.difficulty == 1.0
    assert founded.meta["round"] == "1" and founded.meta["solver_correct"] == "4"
    assert json.loads(founded.meta["solver_answers"]) == ["Ada Lovelace"] * 4
    assert generator.stats.validated == 2 and generator.stats.too_hard == 0


def test_pairs_the_solver_cannot_reproduce_are_rejected() -> None:
    model = ScriptedModel(propose_by_round, solve_wrong)
    generator, samples = _run(model, _config(rounds=2))
    assert samples == []
    assert generator.stats.too_hard == 4  # 2 clusters x 2 rounds
    assert not any(EVOLVE_INSTRUCTION in p for p in model.prompts("proposer", 1))


def test_history_conditions_round_two_per_cluster() -> None:
    model = ScriptedModel(propose_by_round, solve_right)
    generator, samples = _run(model, _config(rounds=2))
    first, second = model.prompts("proposer", 0), model.prompts("proposer", 1)
    assert not any(EVOLVE_INSTRUCTION in p for p in first)
    assert all(EVOLVE_INSTRUCTION in p for p in second)
    harlow = next(p for p in second if "Harlow Works" in p)
    assert "Question: Who founded Harlow Works?\n   Answer: Ada Lovelace" in harlow
    assert "Sunmere" not in harlow.split(EVOLVE_INSTRUCTION)[0].split("already accepted")[1]
    by_round = {(s.meta["round"], s.question) for s in samples}
    assert ("2", "Where is it?") in by_round and ("2", "Fish?") in by_round
    assert generator.stats.validated_per_round == [2, 2]


def test_malformed_replies_and_repeats_are_counted_and_skipped() -> None:
    def propose(prompt: str, k: int) -> str:
        if "Sunmere" in prompt:
            return "Sorry, I would rather not."
        question, answer = FACTS["Harlow Works"][0]  # ignores the push to evolve
        return json.dumps({"question": question, "answer": answer})

    model = ScriptedModel(propose, solve_right)
    generator, samples = _run(model, _config(rounds=2))
    assert [s.question for s in samples] == ["Who founded Harlow Works?"]
    stats = generator.stats
    assert stats.invalid == {"no_json": 2}
    assert stats.duplicates == 1
    assert stats.proposals == 4 and stats.solved == 1


def test_each_round_makes_one_batched_call_per_agent() -> None:
    model = ScriptedModel(propose_by_round, solve_right)
    config = _config(tasks=("viewpoint", "icl"), forms=("mc", "short"), rounds=2,
                     proposals_per_round=3)  # fmt: skip
    generator, _ = _run(model, config)
    assert [role for role, _, _ in model.calls] == ["proposer", "solver"] * 2
    proposer_prompts, proposer_sampling = model.calls[0][1], model.calls[0][2]
    assert len(proposer_prompts) == 2 * 2 * 2  # clusters x tasks x forms
    assert proposer_sampling.n == 3 and proposer_sampling.temperature == 1.0
    assert model.calls[1][2].n == 4
    # per cluster and round: 2 tasks x 2 forms x 3 replies, but the script ignores the task and
    # repeats itself, so only one MC and one short question are new; the other 10 are repeats
    assert generator.stats.duplicates == 2 * 2 * 10
    assert generator.stats.solved == 2 * 2 * 2


def test_multiple_choice_must_beat_chance() -> None:
    model = ScriptedModel(propose_by_round, solve_once)
    generator, samples = _run(model, _config(forms=("mc", "short")))
    assert {s.answer_kind for s in samples} == {"text"}  # 1/4 passes short, not a 1-in-4 guess
    assert all(s.difficulty == 0.25 for s in samples)
    assert generator.stats.too_hard == 2


def test_multiple_choice_samples_have_shuffled_options_and_the_right_letter() -> None:
    model = ScriptedModel(propose_by_round, solve_right)
    _, samples = _run(model, _config(forms=("mc",), rounds=2), seed=4)
    assert len(samples) == 4
    for sample in samples:
        assert sample.task_type == "mc" and len(sample.choices) == 4
        assert sample.choices["ABCD".index(sample.answers[0])] == ANSWERS[sample.question]
        assert sample.question.endswith(MC_SUFFIX)
    assert {s.answers[0] for s in samples} != {"A"}


def test_judge_is_asked_only_where_the_rule_fails_on_short_answers() -> None:
    def paraphrase(prompt: str, k: int) -> str:
        if "(A)" in prompt:
            return "The correct answer is (D)"
        return "Therefore, the answer is the founder, Lady Lovelace"

    model = ScriptedModel(propose_by_round, paraphrase, judge=lambda p, k: "[[YES]]")
    generator, samples = _run(model, _config(forms=("mc", "short")), judge=LLMJudge(model))
    assert generator.mode == "llm + judge"
    judge_prompts = model.prompts("judge", 0)
    assert len(judge_prompts) == 2  # one distinct (question, prediction, gold) per cluster
    assert all("Lady Lovelace" in p for p in judge_prompts)
    assert {s.answer_kind for s in samples} == {"text"}
    assert generator.stats.judged == 8


def test_max_samples_stops_generation() -> None:
    model = ScriptedModel(propose_by_round, solve_right)
    _, samples = _run(model, _config(rounds=3, max_samples=3))
    assert len(samples) == 3


def test_same_seed_same_samples() -> None:
    config = _config(forms=("mc", "short"), rounds=2)
    _, first = _run(ScriptedModel(propose_by_round, solve_right), config, seed=9)
    _, again = _run(ScriptedModel(propose_by_round, solve_right), config, seed=9)
    assert first == again
    assert len({s.id for s in first}) == len(first)


def test_tiny_model_runs_end_to_end(tiny_chat_model) -> None:
    import torch

    torch.set_num_threads(1)
    config = _config(
        forms=("mc", "short"),
        proposals_per_round=2,
        solver_samples=2,
        proposer={"max_new_tokens": 24},
        solver={"max_new_tokens": 16},
    )
    generator, samples = _run(tiny_chat_model, config)
    stats = generator.stats
    assert generator.mode == "llm"
    assert stats.clusters == 2 and stats.proposals == 2 * 2 * 2
    assert sum(stats.invalid.values()) + stats.duplicates + stats.solved == stats.proposals
    assert stats.validated == len(samples) <= stats.solved
    assert all(s.provenance.generator == "mase" for s in samples)


class ScriptedProposer:
    """Proposals from the script, solver answers from a real model."""

    name = "routed"

    def __init__(self, model) -> None:
        self.script = ScriptedModel(propose_by_round, solve_wrong)
        self.model = model

    def generate(self, conversations, sampling):
        if ScriptedModel.role(conversations[0][-1]["content"]) == "proposer":
            return self.script.generate(conversations, sampling)
        return self.model.generate(conversations, sampling)

    def close(self) -> None:
        pass


def test_tiny_model_solves_and_is_verified(tiny_chat_model) -> None:
    import torch

    torch.set_num_threads(1)
    config = _config(forms=("mc", "short"), solver_samples=2, solver={"max_new_tokens": 16})
    generator, samples = _run(ScriptedProposer(tiny_chat_model), config)
    stats = generator.stats
    assert stats.solved == 2 * 2  # clusters x forms, all well-formed
    assert stats.validated + stats.too_hard + stats.too_easy == stats.solved
    assert all(len(json.loads(s.meta["solver_answers"])) == 2 for s in samples)


@pytest.mark.parametrize(
    ("override", "message"),
    [({"tasks": ("debate",)}, "unknown MASE task"), ({"forms": ("essay",)}, "unknown MASE")],
)
def test_unknown_task_or_form_names_fail_with_the_known_ones(override, message) -> None:
    from qwenlong.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        MaseGenerator(_config(**override))
