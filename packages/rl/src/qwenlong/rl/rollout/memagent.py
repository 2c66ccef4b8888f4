"""Memory-agent RL (RECIPE.md section 3) as a rollout kind of the trainer (`rollout.kind: memagent`).

    for each prompt sample b, G trajectories g of the memory agent over its document:
        steps 1..K   (q_core, m_{t-1}, p_{t-1}, x_t) -> <memory> m_t </memory> <plan> p_t </plan>
        final        (q_core, m_K, q_inst)           -> answer
    reward       on the final answer only (the trainer's reward function, unchanged)
    advantage    per trajectory, grouped by prompt (the trainer's estimator, unchanged)
    training     every step of a trajectory is its own sequence (its prompt + its output),
                 carrying the trajectory's advantage; the loss is the usual token-level one

So the trainer only needs the trajectory of each packed sequence (`RolloutBatch.trajectory_of`):
rewards and advantages are computed over the B*G final answers, then copied to the steps.

The policy must be trained on exactly the tokens the engine fed and sampled. The agent speaks
to a `ChatModel`; here that model is `EngineChatModel`, a thin view of the trainer's
`RolloutEngine` (in process or on Ray) that records, for every response it returns, the prompt
ids the engine rendered for it (`RolloutEngine.prompt_ids`, the hf backend's own
`encode_prompt`) and the generated `Completion` with its token ids. `StepCollector`, the agent's
observer, takes those records in the order the agent reports its steps and results, and checks
each against the report (same text, same finish reason), so a change in the agent's call order
fails loudly instead of pairing a step with another step's tokens.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import replace

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.memagent.interfaces import AgentResult, AgentStep
from qwenlong.memagent.solver import MemAgentSolver
from qwenlong.rl.config import RolloutConfig
from qwenlong.rl.interfaces import RolloutEngine
from qwenlong.rl.prompting import PromptBuilder
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence


class EngineChatModel:
    """A `ChatModel` over a `RolloutEngine` that remembers the prompt ids of every response.

    Records queue up in the order of the engine's output (conversation-major, then the `n`
    completions of each), which is the order in which the memory agent reports them.

    Identical conversations in one call are sent once, with `n` times their count: two lanes of
    a sample whose memories happen to agree ask the same prompt, and an engine that seeds each
    response by (seed, prompt, index), as the hf backend does, would hand both the very same
    sample, making the group's trajectories copies instead of independent draws.
    """

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine = engine
        self.name = "rollout-engine"
        self.pending: deque[StepSequence] = deque()

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        index: dict[str, int] = {}
        unique: list[Conversation] = []
        slots: list[tuple[int, int]] = []  # (unique conversation, its occurrence) per input
        counts: list[int] = []
        for conversation in conversations:
            key = json.dumps(list(conversation), sort_keys=True)
            if key not in index:
                index[key] = len(unique)
                unique.append(conversation)
                counts.append(0)
            slots.append((index[key], counts[index[key]]))
            counts[index[key]] += 1
        replies = self._generate_unique(unique, counts, sampling)
        prompt_ids = self.engine.prompt_ids(unique)
        n = sampling.n
        groups = [replies[u][k * n : (k + 1) * n] for u, k in slots]
        for (u, _), group in zip(slots, groups, strict=True):
            self.pending.extend(StepSequence(list(prompt_ids[u]), c) for c in group)
        return groups

    def _generate_unique(
        self, unique: list[Conversation], counts: list[int], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`counts[u] * sampling.n` completions of each unique conversation: one engine call
        per distinct count (usually one: every prompt distinct)."""
        replies: list[list[Completion]] = [[] for _ in unique]
        for count in sorted(set(counts)):
            chosen = [u for u, c in enumerate(counts) if c == count]
            wide = replace(sampling, n=sampling.n * count)
            answered = self.engine.generate([unique[u] for u in chosen], wide)
            for u, group in zip(chosen, answered, strict=True):
                replies[u] = list(group)
        return replies

    def take(self, what: str) -> StepSequence:
        """The oldest unclaimed response; `what` names the claimant in the error."""
        if not self.pending:
            raise BackendError(f"memagent rollout: no recorded response left for {what}")
        return self.pending.popleft()

    def close(self) -> None:
        """Nothing to free: the engine belongs to the trainer."""


class StepCollector:
    """The agent's observer: pairs each reported step and final answer with its recorded tokens.

    Trajectories are keyed by (task index, lane); task ids are the sample's position in the
    batch, so a sample drawn twice in one batch still gives two sets of trajectories.
    """

    def __init__(self, model: EngineChatModel) -> None:
        self.model = model
        self.steps: dict[tuple[int, int], list[StepSequence]] = defaultdict(list)
        self.finals: dict[tuple[int, int], StepSequence] = {}

    def on_step(self, step: AgentStep) -> None:
        record = self.model.take(f"task {step.sample_id} lane {step.lane} step {step.step}")
        _check(record.completion, step.raw_output, step.finish_reason, step.sample_id, step.step)
        self.steps[int(step.sample_id), step.lane].append(record)

    def on_result(self, sample_id: str, results: Sequence[AgentResult]) -> None:
        for result in results:
            record = self.model.take(f"task {sample_id} lane {result.lane} final answer")
            _check(record.completion, result.text, result.finish_reason, sample_id, "final")
            self.finals[int(sample_id), result.lane] = record


def _check(
    completion: Completion, text: str | None, finish: str, task: str, step: int | str
) -> None:
    if completion.text != text or completion.finish_reason != finish:
        raise BackendError(
            f"memagent rollout: task {task} step {step}: the agent reported another response "
            "than the engine returned at this position (call order changed?)"
        )


class MemAgentRollout:
    """`rollout.kind: memagent`: G memory-agent trajectories per sample (see module doc)."""

    def __init__(
        self, config: RolloutConfig, engine: RolloutEngine, prompts: PromptBuilder
    ) -> None:
        self.config, self.engine, self.prompts = config, engine, prompts

    def generate(
        self, samples: Sequence[TaskSample], sampling: SamplingParams, max_input_tokens: int
    ) -> RolloutBatch:
        """Every step of every trajectory a packed sequence, steps then the final answer.

        The document is first middle-truncated to `max_input_tokens` (the stage's input limit:
        the paper's Memory-RL reads up to 128K tokens in 32K chunks), then read chunk by chunk.
        The update steps' sampling follows `config.memagent.step` (unset: the rollout's).
        """
        agent_config = self.config.memagent.model_copy(update={"trace_raw_outputs": "always"})
        model = EngineChatModel(self.engine)
        collector = StepCollector(model)
        solver = MemAgentSolver(
            model,
            self.prompts.counter.tokenizer,
            config=agent_config,
            observer=collector,
            keep_steps=False,
            prompts=self.prompts.prompts,
        )
        cut = [
            replace(s, context=self.prompts.context(s, max_input_tokens), documents=[])
            for s in samples
        ]
        tasks = [replace(task, id=str(b)) for b, task in enumerate(solver.tasks(cut))]
        model.pending.clear()  # an LLM query split's calls are not part of any trajectory
        results = solver.solve_tasks(tasks, sampling)
        if model.pending:
            raise BackendError(
                f"memagent rollout: {len(model.pending)} responses were never reported by the agent"
            )
        lanes = [len(r) for r in results]
        if any(count != sampling.n for count in lanes):
            raise BackendError(f"memagent rollout: lanes per sample {lanes}, expected {sampling.n}")
        trajectories = [
            [[*collector.steps.get((b, g), []), collector.finals[b, g]] for g in range(sampling.n)]
            for b in range(len(samples))
        ]
        return RolloutBatch.from_trajectories(samples, trajectories)
