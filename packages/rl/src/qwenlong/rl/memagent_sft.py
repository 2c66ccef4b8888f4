"""The SFT warm start of a memory-agent run (`rollout.kind: memagent`): reference trajectories.

Memory-agent RL rewards the final answer, which a model can only get right if its earlier
update steps wrote the evidence into the memory. A model warm-started on single-pass answers
has never seen an update prompt, so its memories are noise and so are its rewards. This warm
start trains every sequence the agent's rollout will make it write instead: for each sample,
the reference agent of `qwenlong.memagent.reference` reads the same chunks as the real agent
(same middle truncation, query split, chunker and budgets) and yields one example per update
step (the update prompt over the reference memory so far -> the reference `<memory>`/`<plan>`
reply) plus the final prompt over the last reference memory -> the answer target of
`qwenlong.rl.sft_data`. Only samples that record their evidence (`meta["evidence_chars"]`, written
by synth's assembly) and have a gold answer can be used.

The LLM query split (`query_split: llm`) needs a model the warm start does not have: its
examples are split by the rules instead, which differ from the rollout's split only where the
LLM would have split differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from qwenlong.core.records import TaskSample
from qwenlong.memagent.query import QUERY_SPLITTERS
from qwenlong.memagent.reference import evidence_texts, reference_trajectory
from qwenlong.memagent.solver import task_from_sample
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.prompting import PromptBuilder
from qwenlong.rl.sft_data import Example, sft_target


class MemAgentExamples:
    """`ExampleSource` of the memory agent: K reference update steps and the answer per sample."""

    def __init__(self, config: TrainConfig, prompts: PromptBuilder, max_input_tokens: int) -> None:
        self.agent = config.rollout.memagent
        self.prompts = prompts
        self.max_input_tokens = max_input_tokens
        split = self.agent.query_split
        self.split = QUERY_SPLITTERS.get("rules" if split == "llm" else split)

    def usable(self, sample: TaskSample) -> bool:
        return bool(sample.answers) and evidence_texts(sample) is not None

    def examples(self, samples: Sequence[TaskSample]) -> list[Example]:
        """Every sample's reference steps, then its final answer, sample after sample."""
        tokenizer = self.prompts.counter.tokenizer
        splits = self.split([s.question for s in samples], None, self.agent.split_max_tokens)
        examples: list[Example] = []
        for sample, split in zip(samples, splits, strict=True):
            cut = replace(
                sample, context=self.prompts.context(sample, self.max_input_tokens), documents=[]
            )
            task = task_from_sample(cut, split, self.agent.read_chars)
            pieces = evidence_texts(sample) or []
            trajectory = reference_trajectory(task, pieces, tokenizer, self.agent)
            examples += [(step.conversation, step.target) for step in trajectory.steps]
            examples.append((trajectory.final, sft_target(sample)))
        return examples
