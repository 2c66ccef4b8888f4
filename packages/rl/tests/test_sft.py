"""SFT warm start: targets in the form the reward reads, the packed batch masks exactly the
answer, and a few steps on the tiny model make it answer a training question correctly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.rl.config import SFTConfig
from qwenlong.rl.interfaces import PackedBatch, StepStats
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.rewards import RewardConfig, RewardFn
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.sampler import SamplerConfig
from qwenlong.rl.sft import sft_warm_start
from qwenlong.rl.sft_data import SinglePassExamples, sft_batch, sft_target, think_prefix
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

READING = TaskSample(
    id="r1", task_type="reading", question="What is the code?", answers=["k7"], context="k7."
)
CHOICE = TaskSample(
    id="c1",
    task_type="mc",
    question="Which?",
    answers=["C"],
    answer_kind="choice",
    choices=["a", "b", "c", "d"],
    context="c.",
)
NUMBER = TaskSample(
    id="n1", task_type="numerical", question="How many?", answers=["12.5"], answer_kind="number"
)
DIALOGUE = TaskSample(
    id="d1",
    task_type="dialogue_memory",
    question="Repeat it.",
    answers=["xq7 the poem about tea"],
    answer_kind="sequence",
    meta={"prefix": "xq7"},
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_targets_are_what_each_scorer_reads() -> None:
    assert sft_target(READING) == "Therefore, the answer is k7."
    assert sft_target(NUMBER) == "Therefore, the answer is 12.5."
    assert sft_target(CHOICE) == "The correct answer is (C)"
    assert sft_target(DIALOGUE) == "xq7 the poem about tea"
    rewards = RewardFn(RewardConfig())(
        [READING, NUMBER, CHOICE, DIALOGUE],
        [sft_target(s) for s in (READING, NUMBER, CHOICE, DIALOGUE)],
    )
    assert rewards.rewards.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_thinking_targets_close_an_empty_reasoning_block_and_still_score() -> None:
    opened = "<|im_start|>assistant\n<think>\n"
    assert think_prefix(opened) == "</think>\n\n"
    assert think_prefix("<|im_start|>assistant\n") == "<think>\n\n</think>\n\n"
    target = think_prefix(opened) + sft_target(DIALOGUE)
    assert target == "</think>\n\nxq7 the poem about tea"
    reward = RewardFn(RewardConfig(require_think=True))([DIALOGUE], [target])
    assert reward.rewards.tolist() == [1.0]


def test_unknown_answer_kind_has_no_target() -> None:
    odd = TaskSample(id="o", task_type="reading", question="q", answers=["a"], answer_kind="table")
    with pytest.raises(ConfigError, match="unknown SFT target format 'table'"):
        sft_target(odd)


def test_batch_masks_exactly_the_answer_and_end_of_turn(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = ChatEncoder(tokenizer)
    prompts = PromptBuilder(tokenizer)
    source = SinglePassExamples(prompts, max_input_tokens=400)
    batch = sft_batch(source.examples([READING, CHOICE]), encoder, think=False)
    assert batch.num_sequences == 2
    for s, sample in enumerate((READING, CHOICE)):
        ids = batch.input_ids[batch.cu_seqlens[s] : batch.cu_seqlens[s + 1]]
        mask = batch.loss_mask[batch.cu_seqlens[s] : batch.cu_seqlens[s + 1]]
        answer = tokenizer.decode(ids[mask])
        assert answer == sft_target(sample) + "<|im_end|>"
        assert bool(mask[-1]) and not bool(mask[0])  # the prompt comes first, unmasked
    engine = HFRolloutEngine(tiny_model_dir)
    conversations = prompts.conversations([READING, CHOICE], 400)
    assert encoder.prompt_ids(conversations) == engine.prompt_ids(conversations)


class _Policy:
    """A TorchPolicy that remembers every step's loss."""

    def __init__(self, policy: TorchPolicy) -> None:
        self.policy = policy
        self.losses: list[float] = []

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        stats = self.policy.sft_step(batch, global_tokens)
        self.losses.append(stats.loss)
        return stats


def test_warm_start_teaches_the_tiny_model_to_answer(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts, encoder = PromptBuilder(tokenizer), ChatEncoder(tokenizer)
    samples = [READING, TaskSample(**{**READING.__dict__, "id": "r2", "answers": []})]
    policy = _Policy(TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-2)))
    logged: list[int] = []
    result = sft_warm_start(
        SFTConfig(steps=40, batch_size=1, log_every=15),
        policy,
        samples,
        SinglePassExamples(prompts, max_input_tokens=400),
        encoder,
        sampler=SamplerConfig(batch_size=1, tasks=("reading",)),
        seed=0,
        log=lambda step, metrics: logged.append(step),
    )
    assert result.steps == 40 and logged == [15, 30, 40]
    assert policy.losses[-1] < 0.1 * policy.losses[0]
    engine = HFRolloutEngine(tiny_model_dir)
    engine.load_weights(policy.policy.export_weights())
    sampling = SamplingParams(max_new_tokens=16, temperature=0.0)
    [[completion]] = engine.generate(prompts.conversations([READING], 400), sampling)
    assert completion.text == "Therefore, the answer is k7."


def test_time_budget_stops_the_warm_start(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy = _Policy(TorchPolicy(tiny_model_dir, TorchPolicyConfig(lr=1e-3)))
    result = sft_warm_start(
        SFTConfig(steps=5, batch_size=1),
        policy,
        [READING],
        SinglePassExamples(PromptBuilder(tokenizer), max_input_tokens=400),
        ChatEncoder(tokenizer),
        sampler=SamplerConfig(batch_size=1, tasks=("reading",)),
        seed=0,
        time_budget_s=0.0,
    )
    assert result.steps == 0 and policy.losses == []
