"""The memory-agent loop, batched across samples (RECIPE.md section 3).

    for step t = 0, 1, ...:                        # one generate call per step
        every sample with a chunk x_t left sends (q_core, m_{t-1}, p_{t-1}, x_t)
        parse each reply into (m_t, p_t); a bad reply keeps (m_{t-1}, p_{t-1})
    one generate call: (q_core, m_K, q_inst) -> answer, for every trajectory

A sample leaves the loop after its last chunk, so samples of different lengths finish at
different steps while the batch keeps going; the longest sample sets the number of calls
(max K + 1). On GPU the backend (vLLM) batches each call continuously; on CPU the hf backend
decodes it as padded batches.

`n` trajectories per sample (`sampling.n`) are independent: the first step asks for `n`
completions of the shared first prompt, and each completion starts its own lane with its own
memory from then on. Documents are streamed: each sample holds only its current chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.progress import progress_bar
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import Completion, Conversation
from qwenlong.memagent.chunking import iter_chunks
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import (
    AgentResult,
    AgentStep,
    AgentTask,
    Chunk,
    MemoryState,
    StepObserver,
)
from qwenlong.memagent.parse import clip_state, parse_update
from qwenlong.memagent.prompts import final_messages, update_messages


@dataclass
class _Lane:
    """One trajectory of one sample while it runs."""

    index: int
    state: MemoryState = field(default_factory=MemoryState)
    n_steps: int = 0
    failed_steps: int = 0
    steps: list[AgentStep] = field(default_factory=list)


class MemoryAgent:
    """Reads documents chunk by chunk into a rewritten memory and plan, then answers."""

    def __init__(
        self,
        model: ChatModel,
        tokenizer: Any,
        config: MemAgentConfig | None = None,
        observer: StepObserver | None = None,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        """`tokenizer` is the target model's fast HF tokenizer (chunks and budgets are counted
        in its tokens); `observer` sees every step and result as it happens (the trace);
        `prompts` holds the update and final templates."""
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or MemAgentConfig()
        self.observer = observer
        self.prompts = prompts

    def run(
        self, tasks: Sequence[AgentTask], sampling: SamplingParams, keep_steps: bool = True
    ) -> list[list[AgentResult]]:
        """`sampling.n` results per task, in input order.

        `sampling` is the caller's: its temperature, top-p and budget apply to the final answer
        and, where `config.step` leaves them unset, to the update steps. With `keep_steps`
        False the step records go only to the observer, so memory does not grow with K.
        """
        if not tasks:
            return []
        readers = [self._chunks(task) for task in tasks]
        current: list[Chunk | None] = [next(reader, None) for reader in readers]
        lanes: list[list[_Lane]] = [[] for _ in tasks]
        doc_tokens = [0] * len(tasks)
        step = 0
        with progress_bar(total=None, description="memagent steps") as advance:
            while active := {i: chunk for i, chunk in enumerate(current) if chunk is not None}:
                self._step(step, tasks, active, lanes, sampling, keep_steps)
                for i, chunk in active.items():
                    doc_tokens[i] += chunk.n_tokens
                    current[i] = next(readers[i], None)
                step += 1
                advance()
        for i in range(len(tasks)):
            lanes[i] = lanes[i] or [_Lane(k) for k in range(sampling.n)]  # empty documents
        return self._finish(tasks, lanes, doc_tokens, sampling, keep_steps)

    def step_sampling(self, sampling: SamplingParams, step: int, n: int) -> SamplingParams:
        """Sampling of update step `step`: config.step over the caller's, seed offset by step."""
        cfg = self.config.step
        return SamplingParams(
            max_new_tokens=cfg.max_new_tokens or sampling.max_new_tokens,
            temperature=sampling.temperature if cfg.temperature is None else cfg.temperature,
            top_p=sampling.top_p if cfg.top_p is None else cfg.top_p,
            n=n,
            seed=None if sampling.seed is None else sampling.seed + step + 1,
        )

    def final_sampling(self, sampling: SamplingParams) -> SamplingParams:
        """Sampling of the final answer: the caller's, one completion per lane."""
        return replace(
            sampling, n=1, max_new_tokens=self.config.final_max_tokens or sampling.max_new_tokens
        )

    # --- internals ----------------------------------------------------------------------

    def _chunks(self, task: AgentTask) -> Iterator[Chunk]:
        cfg = self.config
        return iter_chunks(task.read(), self.tokenizer, cfg.chunk_tokens, cfg.read_chars)

    def _step(
        self,
        step: int,
        tasks: Sequence[AgentTask],
        active: dict[int, Chunk],
        lanes: list[list[_Lane]],
        sampling: SamplingParams,
        keep_steps: bool,
    ) -> None:
        """One batched update call for every lane of the `active` tasks (index -> its chunk).
        At step 0 no lane exists yet: each task sends its first prompt once with n
        completions, one per new lane."""
        cfg = self.config
        fan_out = step == 0
        conversations: list[Conversation] = []
        owners: list[tuple[int, _Lane | None]] = []
        for i, chunk in active.items():
            for lane in [None] if fan_out else lanes[i]:
                state = lane.state if lane is not None else MemoryState()
                conversations.append(
                    update_messages(
                        tasks[i], state, chunk, cfg.memory_tokens, cfg.plan_tokens, self.prompts
                    )
                )
                owners.append((i, lane))
        n = sampling.n if fan_out else 1
        replies = self._generate(conversations, self.step_sampling(sampling, step, n), n)
        for (i, lane), completions in zip(owners, replies, strict=True):
            if lane is None:
                lanes[i] = [_Lane(k) for k in range(n)]
                pairs = list(zip(lanes[i], completions, strict=True))
            else:
                pairs = [(lane, completions[0])]
            for owner, completion in pairs:
                self._apply(tasks[i], owner, active[i], completion, keep_steps)

    def _apply(
        self, task: AgentTask, lane: _Lane, chunk: Chunk, completion: Completion, keep: bool
    ) -> None:
        """Parse one reply into the lane's new state and report the step."""
        cfg = self.config
        parsed = parse_update(completion.text, lane.state, completion.finish_reason, cfg.thinking)
        parsed = clip_state(parsed, self.tokenizer, cfg.memory_tokens, cfg.plan_tokens)
        lane.state = parsed.state
        lane.n_steps += 1
        lane.failed_steps += int(parsed.kept_previous)
        raw = cfg.trace_raw_outputs == "always" or (
            cfg.trace_raw_outputs == "failures" and parsed.kept_previous
        )
        record = AgentStep(
            sample_id=task.id,
            lane=lane.index,
            step=chunk.index,
            chunk_tokens=chunk.n_tokens,
            chunk_start_token=chunk.start_token,
            memory=parsed.state.memory,
            plan=parsed.state.plan,
            status=parsed.status,
            issues=list(parsed.issues),
            output_tokens=len(completion.token_ids) if completion.token_ids else None,
            finish_reason=completion.finish_reason,
            raw_output=completion.text if raw else None,
        )
        if self.observer is not None:
            self.observer.on_step(record)
        if keep:
            lane.steps.append(record)

    def _finish(
        self,
        tasks: Sequence[AgentTask],
        lanes: list[list[_Lane]],
        doc_tokens: list[int],
        sampling: SamplingParams,
        keep_steps: bool,
    ) -> list[list[AgentResult]]:
        """One batched final-answer call over every lane of every task."""
        conversations = [
            final_messages(task, lane.state, self.prompts)
            for task, task_lanes in zip(tasks, lanes, strict=True)
            for lane in task_lanes
        ]
        replies = iter(self._generate(conversations, self.final_sampling(sampling), 1))
        results: list[list[AgentResult]] = []
        for task, task_lanes, tokens in zip(tasks, lanes, doc_tokens, strict=True):
            per_task = []
            for lane in task_lanes:
                completion = next(replies)[0]
                per_task.append(
                    AgentResult(
                        sample_id=task.id,
                        lane=lane.index,
                        text=completion.text,
                        finish_reason=completion.finish_reason,
                        output_tokens=len(completion.token_ids) if completion.token_ids else None,
                        route="agent",
                        memory=lane.state,
                        n_steps=lane.n_steps,
                        failed_steps=lane.failed_steps,
                        document_tokens=tokens,
                        steps=lane.steps if keep_steps else [],
                    )
                )
            if self.observer is not None:
                self.observer.on_result(task.id, per_task)
            results.append(per_task)
        return results

    def _generate(
        self, conversations: list[Conversation], sampling: SamplingParams, n: int
    ) -> list[list[Completion]]:
        """One backend call; a reply of the wrong shape is a backend error, not a parse error."""
        replies = self.model.generate(conversations, sampling)
        if len(replies) != len(conversations) or any(len(r) != n for r in replies):
            raise BackendError(
                f"model {self.model.name!r} returned {[len(r) for r in replies]} completions "
                f"for {len(conversations)} prompts with n={n}"
            )
        return replies
