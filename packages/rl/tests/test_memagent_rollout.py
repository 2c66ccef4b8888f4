"""Memory-agent rollouts: each step a packed sequence with its trajectory's advantage, rewards
from the final answers only, the exact prompt and response ids, and a tiny end-to-end run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from transformers import AutoTokenizer

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import BackendError, ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.core.rundir import read_metrics
from qwenlong.memagent.chunking import iter_chunks
from qwenlong.memagent.interfaces import AgentResult
from qwenlong.rl.advantages import AdvantageConfig, compute_advantages
from qwenlong.rl.config import ROLLOUTS, RolloutConfig, TrainConfig
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.rewards import RewardConfig, RewardFn
from qwenlong.rl.rollout.batch import RolloutBatch
from qwenlong.rl.rollout.memagent import EngineChatModel, MemAgentRollout, StepCollector
from qwenlong.rl.trainer import train

CHUNK = 16


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


class ScriptedEngine:
    """A `RolloutEngine` whose replies are fixed by the prompt: update prompts get a memory
    naming the gold code (lane 0: "good", lane 1: "bad"); final prompts answer the code when
    the memory says "good" and a wrong code otherwise. Every memory holds the gold answer, so a
    reward read from any update output would be 1."""

    name = "scripted"

    def __init__(self, tokenizer: Any) -> None:
        self.encoder = ChatEncoder(tokenizer)
        self.tokenizer = tokenizer
        self.replies: list[tuple[list[int], Completion]] = []

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        out = []
        for conversation, ids in zip(conversations, self.prompt_ids(conversations), strict=True):
            text = conversation[-1]["content"]
            code = text.split("code of item ")[1].split("?")[0]
            group = [self._reply(text, code, j) for j in range(sampling.n)]
            self.replies += [(ids, c) for c in group]
            out.append(group)
        return out

    def _reply(self, prompt: str, code: str, j: int) -> Completion:
        if "<previous_memory>" in prompt:
            verdict = ("good", "bad")[j] if "verdict" not in prompt else _verdict(prompt)
            text = f"<memory>verdict {verdict}: item {code} is k{code}</memory><plan>go on</plan>"
        else:
            answer = f"k{code}" if "verdict good" in prompt else "zz"
            text = f"Therefore, the answer is {answer}"
        ids = [*self.tokenizer.encode(text, add_special_tokens=False), self.encoder.end_id]
        return Completion(text=text, token_ids=ids, finish_reason="stop")

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return self.encoder.prompt_ids(conversations)

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        raise AssertionError("not used")


def _verdict(prompt: str) -> str:
    return "good" if "verdict good" in prompt else "bad"


def make_samples() -> list[TaskSample]:
    filler = " ".join(f"Line {n} says nothing of note." for n in range(8))
    return [
        TaskSample(
            id=f"read-{i}",
            task_type="reading",
            question=f"What is the code of item {i}?",
            answers=[f"k{i}"],
            context=f"{filler} Item {i} has code k{i}. " + filler[: 40 * i],
        )
        for i in (1, 2)
    ]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def rollout_config() -> RolloutConfig:
    return RolloutConfig(
        group_size=2,
        kind="memagent",
        memagent={"chunk_tokens": CHUNK, "memory_tokens": 64, "plan_tokens": 16},
    )


def run_rollout(tokenizer: Any, samples: list[TaskSample]) -> tuple[RolloutBatch, ScriptedEngine]:
    engine = ScriptedEngine(tokenizer)
    sampling = SamplingParams(max_new_tokens=64, temperature=0.7, n=2, seed=1)
    rollout = MemAgentRollout(rollout_config(), engine, PromptBuilder(tokenizer))
    batch = rollout.generate(samples, sampling, 4000)
    return batch, engine


def chunk_count(sample: TaskSample, tokenizer: Any) -> int:
    return len(list(iter_chunks(sample.context, tokenizer, CHUNK)))


def test_each_trajectory_is_its_steps_then_the_answer(tokenizer: Any) -> None:
    samples = make_samples()
    batch, engine = run_rollout(tokenizer, samples)
    steps = [chunk_count(s, tokenizer) for s in samples]
    assert min(steps) >= 3 and steps[0] != steps[1]  # several chunks, different K per sample
    expected = [t for b, k in enumerate(steps) for t in [2 * b] * (k + 1) + [2 * b + 1] * (k + 1)]
    assert batch.trajectory_of.tolist() == expected
    assert batch.packed.num_sequences == 2 * sum(k + 1 for k in steps)
    assert len(batch.samples) == len(batch.completions) == 4
    assert batch.group_ids.tolist() == [0, 0, 1, 1]
    # Every sequence is a (prompt ids, response ids) pair the engine actually saw and produced.
    produced = {(tuple(p), tuple(c.token_ids)) for p, c in engine.replies}
    starts, ends = batch.packed.cu_seqlens[:-1].tolist(), batch.packed.cu_seqlens[1:].tolist()
    for s, (start, end) in enumerate(zip(starts, ends, strict=True)):
        ids = batch.packed.input_ids[start:end]
        mask = batch.packed.loss_mask[start:end]
        pair = (tuple(ids[~mask].tolist()), tuple(ids[mask].tolist()))
        assert pair in produced, f"sequence {s} was not generated by the engine"
    # The last sequence of each trajectory is its final answer.
    last = [
        ends[i]
        for i in range(len(expected))
        if i + 1 == len(expected) or expected[i + 1] != expected[i]
    ]
    for trajectory, end in enumerate(last):
        answer = batch.completions[trajectory].token_ids
        assert batch.packed.input_ids[end - len(answer) : end].tolist() == answer


def test_rewards_from_final_answers_and_advantage_copied_to_every_step(tokenizer: Any) -> None:
    batch, _ = run_rollout(tokenizer, make_samples())
    assert batch.outputs == [
        "Therefore, the answer is k1",
        "Therefore, the answer is zz",
        "Therefore, the answer is k2",
        "Therefore, the answer is zz",
    ]
    rewards = RewardFn(RewardConfig())(batch.samples, batch.outputs).rewards
    assert rewards.tolist() == [1.0, 0.0, 1.0, 0.0]
    advantages = compute_advantages(rewards, batch.group_ids, batch.task_ids, AdvantageConfig())
    # Eq.7 by hand: group means 0.5; unbiased std of [1, 0, 1, 0] over the task is sqrt(1/3).
    hand = 0.5 / ((1 / 3) ** 0.5 + 1e-6)
    assert advantages.tolist() == pytest.approx([hand, -hand, hand, -hand], rel=1e-5)
    per_sequence = batch.per_sequence(advantages)
    assert per_sequence.shape == (batch.packed.num_sequences,)
    for trajectory in range(4):
        chosen = per_sequence[batch.trajectory_of == trajectory]
        assert torch.all(chosen == advantages[trajectory])


def test_an_agent_report_out_of_step_with_the_engine_is_refused(tokenizer: Any) -> None:
    engine = ScriptedEngine(tokenizer)
    model = EngineChatModel(engine)
    conversation = [{"role": "user", "content": "Therefore? code of item 3?"}]
    model.generate([conversation], SamplingParams(max_new_tokens=4, n=1))
    collector = StepCollector(model)
    with pytest.raises(BackendError, match="task 0 step final"):
        collector.on_result("0", [AgentResult(sample_id="0", lane=0, text="something else")])
    with pytest.raises(BackendError, match="no recorded response"):
        model.take("task 0 lane 1 final answer")


def test_unknown_rollout_kind_names_the_known_ones() -> None:
    assert {"single_pass", "memagent"} <= set(ROLLOUTS.names())
    with pytest.raises(ConfigError, match="memagent"):
        ROLLOUTS.get("memagnet")


def test_tiny_memagent_run_trains_on_steps(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dialogue needles with an empty MRCR prefix: even the random model's answers earn a dense,
    # varying reward, so the advantages are not all zero and the steps carry a gradient.
    samples = [
        TaskSample(
            id=f"dlg-{i}",
            task_type="dialogue_memory",
            question=f"Repeat the line about item {i}.",
            answers=[f"item {i} is here"],
            answer_kind="sequence",
            context=" ".join(f"line {n}: item {n} is here." for n in range(12 + i)),
            meta={"prefix": ""},
        )
        for i in range(7)
    ]
    data = write_samples(samples[:4], tmp_path / "data.parquet")
    heldout = write_samples(samples[4:], tmp_path / "heldout.parquet")
    calls: list[tuple[str, int]] = []
    original = ROLLOUTS.get

    def recording(name: str) -> Any:
        factory = original(name)

        def make(*args: Any) -> Any:
            rollout = factory(*args)

            class Recorded:
                engine = rollout.engine

                def generate(self, samples: Sequence[TaskSample], *rest: Any) -> RolloutBatch:
                    calls.append((name, len(samples)))
                    return rollout.generate(samples, *rest)

            return Recorded()

        return make

    monkeypatch.setattr(ROLLOUTS, "get", recording)
    config = load_config_dict(
        {
            "model": str(tiny_model_dir),
            "data": {"train": [str(data)], "heldout": str(heldout)},
            "heldout": {"size": 3},
            "steps": 2,
            "seed": 1,
            "sampler": {"batch_size": 2, "tasks": ["dialogue_memory"]},
            "rollout": {
                "kind": "memagent",
                "group_size": 2,
                "max_new_tokens": 6,
                "max_input_tokens": 400,
                "memagent": {"chunk_tokens": 64, "memory_tokens": 32, "plan_tokens": 16},
            },
            "policy": {"torch": {"lr": 1e-3}},
            "aepo": {"entropy_high": 50.0, "entropy_low": 40.0},
            "checkpoint_every": None,
            "ray": {"enabled": False},
        },
        TrainConfig,
        "test",
    )
    train(config, tmp_path / "run")
    records = [r for r in read_metrics(tmp_path / "run") if "reward_mean" in r]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        # 2 prompts x 2 trajectories, each at least two chunks + the answer.
        assert record["sequences"] >= 4 * 3
        assert record["response_tokens"] > 4 * 6  # update outputs train, not just the answers
    assert any(r["reward_std"] > 0 and r["grad_norm"] > 0 for r in records)
    # the 3 held-out prompts are answered by the memory agent, before and after training
    assert calls == [("memagent", 3), ("memagent", 2), ("memagent", 2), ("memagent", 3)]


class CountingEngine:
    """Numbers every completion it makes and records the `n` of each call."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (conversations, n)
        self.made = 0

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append((len(conversations), sampling.n))
        out = []
        for _ in conversations:
            group = [Completion(text=str(self.made + j), token_ids=[9]) for j in range(sampling.n)]
            self.made += sampling.n
            out.append(group)
        return out

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return [[len(c[0]["content"])] for c in conversations]

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        raise AssertionError("not used")


def test_identical_prompts_in_one_call_get_independent_responses() -> None:
    engine = CountingEngine()
    model = EngineChatModel(engine)
    same, other = [{"role": "user", "content": "aa"}], [{"role": "user", "content": "b"}]
    replies = model.generate([same, other, same], SamplingParams(max_new_tokens=2, n=1))
    # "aa" asked once with n=2 (one call per multiplicity), "b" once with n=1.
    assert sorted(engine.calls) == [(1, 1), (1, 2)]
    texts = [group[0].text for group in replies]
    assert texts[0] != texts[2] and len(set(texts)) == 3
    assert [(r.prompt_ids, r.completion.text) for r in model.pending] == [
        ([2], texts[0]),
        ([1], texts[1]),
        ([2], texts[2]),
    ]


@pytest.mark.slow  # Ray actors each import torch and transformers: about a minute
def test_memory_agent_warm_start_and_rl_run_on_ray_actors(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    filler = " ".join(f"record {n} is unrelated." for n in range(30))
    samples = []
    for i in range(6):
        evidence = f"Item {i} has the code k{i}."
        context = f"{filler}\n\n{evidence}\n\n{filler}"
        start = context.index(evidence)
        samples.append(
            TaskSample(
                id=f"r{i}",
                task_type="reading",
                question=f"What is the code of item {i}?",
                answers=[f"k{i}"],
                context=context,
                meta={"evidence_chars": f"[[{start}, {start + len(evidence)}]]"},
            )
        )
    data = write_samples(samples[:4], tmp_path / "data.parquet")
    heldout = write_samples(samples[4:], tmp_path / "heldout.parquet")
    config = load_config_dict(
        {
            "model": str(tiny_model_dir),
            "data": {"train": [str(data)], "heldout": str(heldout)},
            "steps": 1,
            "sampler": {"batch_size": 2, "tasks": ["reading"]},
            "rollout": {
                "kind": "memagent",
                "group_size": 2,
                "max_new_tokens": 8,
                "max_input_tokens": 1024,
                "memagent": {
                    "chunk_tokens": 96,
                    "memory_tokens": 48,
                    "plan_tokens": 16,
                    "step": {"max_new_tokens": 24},
                },
            },
            "sft": {"steps": 2, "batch_size": 2},
            "heldout": {"size": 2},
            "ray": {"enabled": True},
        },
        TrainConfig,
        "test",
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = train(config, tmp_path / "run")
    finally:
        ray.shutdown()
    [record] = [r for r in read_metrics(tmp_path / "run") if "reward_mean" in r]
    assert record["sequences"] >= 2 * 2 * 3  # each trajectory: at least two chunks + the answer
    assert summary["heldout_size"] == 2 and summary["sft"]["steps"] == 2
    sft_lines = read_metrics(tmp_path / "run" / "sft")
    assert sft_lines[-1]["loss_tokens"] > 2 * 8  # memory targets train, not only the answers
