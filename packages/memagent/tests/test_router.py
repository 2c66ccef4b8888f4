"""The router: single pass when prompt + generation budget fit the window, the agent otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.prompt_set import PromptSet
from qwenlong.core.records import Completion, TaskSample
from qwenlong.evals.prompts import build_messages, build_prompt
from qwenlong.evals.truncation import HFTokenCounter
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.prompts import UPDATE_INTRO
from qwenlong.memagent.solver import MemAgentSolver, RoutedSolver

MAX_NEW = 100


class Echo:
    """Answers update prompts with a fixed memory and everything else with its kind."""

    name = "echo"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, conversations, sampling):
        prompts = [c[-1]["content"] for c in conversations]
        self.calls.append(prompts)
        return [
            [
                Completion("<memory>kept</memory><plan>p</plan>")
                if p.startswith(UPDATE_INTRO)
                else Completion(f"answer {k}")
                for k in range(sampling.n)
            ]
            for p in prompts
        ]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _sample(sid: str, words: int) -> TaskSample:
    context = " ".join(f"item{i} is red." for i in range(words))
    return TaskSample(
        id=sid, task_type="reading", question="Which item is red?", answers=["x"], context=context
    )


def _router(tokenizer, window: int, prompt_limit: int | None = None, mode: str = "auto"):
    config = MemAgentConfig(
        chunk_tokens=64,
        memory_tokens=32,
        plan_tokens=16,
        router={"window_tokens": window, "mode": mode},
    )
    return RoutedSolver(Echo(), tokenizer, max_input_tokens=prompt_limit, config=config)


def _prompt_tokens(tokenizer, sample: TaskSample) -> int:
    return HFTokenCounter(tokenizer).count_messages(build_messages(sample))


def test_the_window_boundary_is_exact(tokenizer):
    sample = _sample("a", 20)
    prompt = _prompt_tokens(tokenizer, sample)
    [task] = _router(tokenizer, 10_000).tasks([sample])
    fits = _router(tokenizer, prompt + MAX_NEW).route(task, MAX_NEW, sample)
    assert (fits.route, fits.prompt_tokens, fits.limit) == ("single_pass", prompt, prompt)
    over = _router(tokenizer, prompt + MAX_NEW - 1).route(task, MAX_NEW, sample)
    assert over.route == "agent" and over.limit == prompt - 1


def test_a_long_document_is_routed_without_building_its_prompt(tokenizer):
    sample = _sample("long", 2000)
    router = _router(tokenizer, 600)
    [task] = router.tasks([sample])
    decision = router.route(task, MAX_NEW, sample)
    assert (decision.route, decision.prompt_tokens, decision.limit) == ("agent", None, 500)


def test_the_prompt_limit_sends_fitting_prompts_to_the_agent(tokenizer):
    sample = _sample("a", 20)
    prompt = _prompt_tokens(tokenizer, sample)
    router = _router(tokenizer, 100_000, prompt_limit=prompt - 1)
    [task] = router.tasks([sample])
    assert router.route(task, MAX_NEW, sample).route == "agent"
    config = MemAgentConfig(router={"single_pass_max_prompt_tokens": prompt})
    explicit = RoutedSolver(Echo(), tokenizer, max_input_tokens=10, config=config)
    assert explicit.route(task, MAX_NEW, sample).route == "single_pass"


@pytest.mark.parametrize("mode", ["agent", "single_pass"])
def test_forced_modes_skip_counting(tokenizer, mode):
    router = _router(tokenizer, 100_000, mode=mode)
    [task] = router.tasks([_sample("a", 5)])
    assert router.route(task, MAX_NEW).route == mode


def test_a_generation_budget_larger_than_the_window_always_means_agent(tokenizer):
    router = _router(tokenizer, 500)
    [task] = router.tasks([_sample("a", 1)])
    assert router.route(task, 600).route == "agent"


def test_routed_solve_keeps_input_order_and_uses_the_single_pass_prompt(tokenizer):
    short, long_, short2 = _sample("s", 10), _sample("l", 400), _sample("t", 12)
    limit = max(_prompt_tokens(tokenizer, s) for s in (short, short2))
    router = _router(tokenizer, limit + MAX_NEW)
    outputs = router.solve([short, long_, short2], SamplingParams(max_new_tokens=MAX_NEW, n=2))
    model = router.model
    assert model.calls[0] == [build_prompt(short), build_prompt(short2)]  # one single-pass call
    assert all(p.startswith(UPDATE_INTRO) for call in model.calls[1:-1] for p in call)
    assert len(model.calls) >= 3  # then the agent: >= 1 step and its final call
    assert [[o.text for o in per] for per in outputs] == [
        ["answer 0", "answer 1"],
        ["answer 0", "answer 0"],
        ["answer 0", "answer 1"],
    ]
    assert outputs[0][0].trace == [] and outputs[1][0].trace[0]["memory"] == "kept"


def test_solvers_need_a_tokenizer_and_accept_config_options(tokenizer):
    with pytest.raises(ConfigError, match="set `tokenizer:` to its path"):
        MemAgentSolver(Echo())
    solver = MemAgentSolver(Echo(), HFTokenCounter(tokenizer), preset="memagent")
    assert (solver.config.chunk_tokens, solver.config.memory_tokens) == (5000, 1024)
    with pytest.raises(ConfigError, match="memagent solver options: chunk_tokns"):
        MemAgentSolver(Echo(), tokenizer, chunk_tokns=10)


class Tagged:
    """Replies by the tag its custom prompts start with; records every prompt."""

    name = "tagged"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, conversations, sampling):
        prompts = [c[-1]["content"] for c in conversations]
        self.prompts += prompts
        replies = {
            "SPLIT": "<question>Which item is red?</question><format></format>",
            "UPDATE": "<memory>kept</memory><plan>p</plan>",
        }
        return [
            [Completion(replies.get(p.split(":")[0], "answer")) for _ in range(sampling.n)]
            for p in prompts
        ]

    def close(self) -> None:
        pass


def test_every_prompt_the_routed_solver_sends_comes_from_the_configured_templates(
    tokenizer, tmp_path
):
    files = {
        "single_pass": "READ: $context $question",
        "memagent_query_split": "SPLIT: $query",
        "memagent_update": "UPDATE: $problem | $memory | $section",
        "memagent_final": "FINAL: $problem | $memory",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text + "\n")
    prompts = PromptSet({name: tmp_path / f"{name}.txt" for name in files})
    short, long_ = _sample("s", 10), _sample("l", 400)
    config = MemAgentConfig(
        chunk_tokens=64,
        memory_tokens=32,
        plan_tokens=16,
        query_split="llm",
        router={"window_tokens": 400 + MAX_NEW},
    )
    model = Tagged()
    solver = RoutedSolver(model, tokenizer, config=config, prompts=prompts)
    outputs = solver.solve([short, long_], SamplingParams(max_new_tokens=MAX_NEW))
    kinds = {p.split(":")[0] for p in model.prompts}
    assert kinds == {"SPLIT", "READ", "UPDATE", "FINAL"}
    assert f"READ: {short.context} Which item is red?" in model.prompts
    assert outputs[1][0].trace[0]["memory"] == "kept"
