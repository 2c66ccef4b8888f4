"""The memory agent as an evals `Solver`, and the router between it and single-pass reading.

`MemAgentSolver` ("memagent" in eval YAML) answers every sample through the agent.
`RoutedSolver` ("routed") is how the paper serves one model in both modes (RECIPE.md section 3):
a sample whose whole prompt plus generation budget fits the window is read in one pass, with
no truncation; a longer one goes to the agent. Both are built the way the eval runner builds
any solver, `factory(model, tokenizer=..., max_input_tokens=..., prompts=..., **options)`,
where `prompts` is the experiment's `PromptSet` (agent prompts and, for the routed solver's
single pass, the reading prompt) and `options` are `MemAgentConfig` fields. Importing qwenlong.memagent registers both (evals may not
import memagent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import SolverOutput
from qwenlong.evals.prompts import build_messages, render_context
from qwenlong.evals.solver import DEFAULT_MAX_INPUT_TOKENS, SinglePassSolver
from qwenlong.evals.truncation import HFTokenCounter, as_token_counter
from qwenlong.memagent.agent import MemoryAgent
from qwenlong.memagent.chunking import count_tokens_upto, text_reader
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentResult, AgentTask, QuerySplit, Route, StepObserver
from qwenlong.memagent.query import QUERY_SPLITTERS


class MemAgentSolver:
    """A `Solver` that reads every sample chunk by chunk through the memory agent.

    `max_input_tokens` is accepted for the SOLVERS factory signature and not used: the agent's
    prompts are bounded by chunk_tokens + memory_tokens + plan_tokens, not by a truncation
    budget. Each output's `trace` holds the sample's steps (memory and plan per chunk) unless
    `keep_steps` is False, in which case only the observer sees them.
    """

    name = "memagent"

    def __init__(
        self,
        model: ChatModel,
        tokenizer: Any | None = None,
        max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS,
        config: MemAgentConfig | None = None,
        observer: StepObserver | None = None,
        keep_steps: bool = True,
        prompts: PromptSet = DEFAULT_PROMPTS,
        **options: Any,
    ) -> None:
        self.model = model
        self.config = resolve_config(config, options)
        self.tokenizer = resolve_tokenizer(model, tokenizer)
        self.observer = observer
        self.keep_steps = keep_steps
        self.prompts = prompts
        self.agent = MemoryAgent(model, self.tokenizer, self.config, observer, prompts)

    def tasks(self, samples: Sequence[TaskSample]) -> list[AgentTask]:
        """Samples as agent tasks: questions split per `config.query_split`, documents sliced."""
        splitter = QUERY_SPLITTERS.get(self.config.query_split)
        questions = [s.question for s in samples]
        splits = splitter(questions, self.model, self.config.split_max_tokens, self.prompts)
        return [
            task_from_sample(sample, split, self.config.read_chars)
            for sample, split in zip(samples, splits, strict=True)
        ]

    def solve_tasks(
        self,
        tasks: Sequence[AgentTask],
        sampling: SamplingParams,
        samples: Sequence[TaskSample] | None = None,
    ) -> list[list[AgentResult]]:
        """`sampling.n` agent results per task, in input order. `samples` (the tasks' original
        samples) is accepted for symmetry with `RoutedSolver` and not needed."""
        return self.agent.run(tasks, sampling, keep_steps=self.keep_steps)

    def solve(
        self, samples: Sequence[TaskSample], sampling: SamplingParams
    ) -> list[list[SolverOutput]]:
        """`sampling.n` outputs per sample, each with its per-step trace."""
        if not samples:
            return []
        return to_solver_outputs(self.solve_tasks(self.tasks(samples), sampling))


@dataclass(frozen=True)
class RouteDecision:
    """Where one sample goes, and the numbers behind it."""

    route: Route
    prompt_tokens: int | None
    """The single-pass prompt's tokens; None when the document alone passed the limit (it is
    then not tokenized further) or the route was forced."""
    limit: int
    """The largest single-pass prompt allowed for this sample."""


class RoutedSolver:
    """A `Solver` that reads in one pass what fits the window, and uses the agent beyond it.

    Single pass when prompt + `sampling.max_new_tokens` <= `router.window_tokens` and the prompt
    is within `router.single_pass_max_prompt_tokens` (default: the caller's `max_input_tokens`).
    The document is counted streaming and only up to the limit, so a 4M-token input costs a
    limit's worth of tokenization to route.
    """

    name = "routed"

    def __init__(
        self,
        model: ChatModel,
        tokenizer: Any | None = None,
        max_input_tokens: int | None = DEFAULT_MAX_INPUT_TOKENS,
        config: MemAgentConfig | None = None,
        observer: StepObserver | None = None,
        keep_steps: bool = True,
        prompts: PromptSet = DEFAULT_PROMPTS,
        **options: Any,
    ) -> None:
        self.agent_solver = MemAgentSolver(
            model,
            tokenizer,
            config=config,
            observer=observer,
            keep_steps=keep_steps,
            prompts=prompts,
            **options,
        )
        self.model = model
        self.prompts = prompts
        self.config = self.agent_solver.config
        self.counter: HFTokenCounter = as_token_counter(self.agent_solver.tokenizer)
        self.observer = observer
        router = self.config.router
        self.prompt_limit = router.single_pass_max_prompt_tokens or max_input_tokens

    def tasks(self, samples: Sequence[TaskSample]) -> list[AgentTask]:
        """Samples as agent tasks (see `MemAgentSolver.tasks`)."""
        return self.agent_solver.tasks(samples)

    def route(
        self, task: AgentTask, max_new_tokens: int, sample: TaskSample | None = None
    ) -> RouteDecision:
        """Decide one sample. `sample` is the single-pass form (built from `task` when None)."""
        router = self.config.router
        limit = router.window_tokens - max_new_tokens
        if self.prompt_limit is not None:
            limit = min(limit, self.prompt_limit)
        if router.mode != "auto":
            return RouteDecision(router.mode, None, limit)
        if limit <= 0 or count_tokens_upto(task.read(), self.counter, limit) is None:
            return RouteDecision("agent", None, limit)
        sample = sample or sample_from_task(task)
        prompt_tokens = self.counter.count_messages(build_messages(sample, prompts=self.prompts))
        return RouteDecision(
            "single_pass" if prompt_tokens <= limit else "agent", prompt_tokens, limit
        )

    def solve_tasks(
        self,
        tasks: Sequence[AgentTask],
        sampling: SamplingParams,
        samples: Sequence[TaskSample] | None = None,
    ) -> list[list[AgentResult]]:
        """`sampling.n` results per task: one single-pass call for those that fit, the agent's
        batched loop for the rest. `samples` are the tasks' original samples, when there are."""
        originals = list(samples) if samples is not None else [None] * len(tasks)
        decisions = [
            self.route(task, sampling.max_new_tokens, sample)
            for task, sample in zip(tasks, originals, strict=True)
        ]
        results: list[list[AgentResult]] = [[] for _ in tasks]
        single = [i for i, d in enumerate(decisions) if d.route == "single_pass"]
        agent = [i for i, d in enumerate(decisions) if d.route == "agent"]
        if single:
            direct = [originals[i] or sample_from_task(tasks[i]) for i in single]
            limit = max(decisions[i].limit for i in single)
            solver = SinglePassSolver(self.model, self.counter, limit, self.prompts)
            for i, outputs in zip(single, solver.solve(direct, sampling), strict=True):
                results[i] = [
                    single_pass_result(tasks[i].id, k, out, decisions[i].prompt_tokens)
                    for k, out in enumerate(outputs)
                ]
                if self.observer is not None:
                    self.observer.on_result(tasks[i].id, results[i])
        if agent:
            answered = self.agent_solver.solve_tasks([tasks[i] for i in agent], sampling)
            for i, per_task in zip(agent, answered, strict=True):
                results[i] = per_task
        return results

    def solve(
        self, samples: Sequence[TaskSample], sampling: SamplingParams
    ) -> list[list[SolverOutput]]:
        """`sampling.n` outputs per sample; single-pass outputs have an empty trace."""
        if not samples:
            return []
        return to_solver_outputs(self.solve_tasks(self.tasks(samples), sampling, samples))


def resolve_config(config: MemAgentConfig | None, options: dict[str, Any]) -> MemAgentConfig:
    """`config`, with `options` (MemAgentConfig fields, e.g. from eval YAML) laid over it."""
    if not options:
        return config or MemAgentConfig()
    base = config.model_dump(exclude_unset=True) if config is not None else {}
    return load_config_dict({**base, **options}, MemAgentConfig, "memagent solver options")


def resolve_tokenizer(model: ChatModel, tokenizer: Any | None) -> Any:
    """The HF tokenizer to count in: the one given, else the model's own (hf backend)."""
    if isinstance(tokenizer, HFTokenCounter):
        return tokenizer.tokenizer
    if tokenizer is not None:
        return tokenizer
    own = getattr(model, "tokenizer", None)
    if own is None:
        raise ConfigError(
            f"memagent: model {model.name!r} has no tokenizer at hand; chunks are counted in the "
            "target tokenizer's tokens, so set `tokenizer:` to its path"
        )
    return own


def task_from_sample(sample: TaskSample, split: QuerySplit, block_chars: int) -> AgentTask:
    """An `AgentTask` for `sample`: q_core from the split, q_inst from the split and the sample.

    Options found in the question (`split.choices`) are used when the sample has none, and
    then the answer is asked for as a letter.
    """
    choices = tuple(sample.choices) or split.choices
    found_options = bool(split.choices) and not sample.choices
    instruction = "\n".join(p for p in (split.instruction, sample.instruction.strip()) if p)
    return AgentTask(
        id=sample.id,
        question=split.question,
        read=text_reader(render_context(sample), block_chars),
        instruction=instruction,
        choices=choices,
        answer_kind="choice" if found_options else sample.answer_kind,
    )


def sample_from_task(task: AgentTask) -> TaskSample:
    """The single-pass form of a task, its document read into memory (only done for documents
    the router has already found to fit the window)."""
    return TaskSample(
        id=task.id,
        task_type="reading",
        question=task.question,
        answers=[],
        answer_kind=task.answer_kind,
        instruction=task.instruction,
        context="".join(task.read()),
        choices=list(task.choices),
    )


def single_pass_result(
    sample_id: str, lane: int, output: SolverOutput, prompt_tokens: int | None
) -> AgentResult:
    """A single-pass output in the agent's result form (no steps, route "single_pass")."""
    return AgentResult(
        sample_id=sample_id,
        lane=lane,
        text=output.text,
        finish_reason=output.finish_reason,
        output_tokens=output.output_tokens,
        route="single_pass",
        document_tokens=prompt_tokens or 0,
    )


def to_solver_outputs(results: list[list[AgentResult]]) -> list[list[SolverOutput]]:
    """Agent results as evals `SolverOutput`s, each trace the lane's step records."""
    return [
        [
            SolverOutput(
                text=result.text,
                trace=[step.to_dict() for step in result.steps],
                finish_reason=result.finish_reason,
                output_tokens=result.output_tokens,
            )
            for result in per_sample
        ]
        for per_sample in results
    ]
