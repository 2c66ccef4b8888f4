"""The vLLM rollout engine on one GPU (marked `gpu`; `benchmarks/gpu_check.sh` runs these).

Generation from the tiny model, the engine's log-probs against the policy's on the same tokens
(the training-inference mismatch), weights synced after a training step and generation
following them, and a colocated engine's memory released and reclaimed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from qwenlong.core.interfaces import SamplingParams
from qwenlong.rl.interfaces import Policy, PolicyUpdate, RolloutEngine
from qwenlong.rl.rollout.batch import RolloutBatch, StepSequence
from qwenlong.rl.rollout.vllm_config import VLLMRolloutConfig
from qwenlong.rl.rollout.vllm_engine import VLLMRolloutEngine
from qwenlong.rl.rollout_correction import mismatch_metrics
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig
from qwenlong.rl.weight_sync import sync_weights

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm"),
]

CONVERSATIONS = [[{"role": "user", "content": f"Tell me about item {i}."}] for i in range(8)]
SAMPLING = SamplingParams(max_new_tokens=32, temperature=1.0, top_p=1.0, n=4, seed=5, logprobs=True)


def _batch(engine: RolloutEngine) -> RolloutBatch:
    from qwenlong.core.records import TaskSample

    groups = engine.generate(CONVERSATIONS, SAMPLING)
    prompts = engine.prompt_ids(CONVERSATIONS)
    samples = [
        TaskSample(id=str(i), task_type="mc", question="q", answers=["A"], answer_kind="choice")
        for i in range(len(CONVERSATIONS))
    ]
    trajectories = [
        [[StepSequence(prompt, completion)] for completion in group]
        for prompt, group in zip(prompts, groups, strict=True)
    ]
    return RolloutBatch.from_trajectories(samples, trajectories)


def _gap(policy: Policy, batch: RolloutBatch) -> float:
    stats = policy.forward_logprobs(batch.packed, batch.packed.loss_mask)
    figures = mismatch_metrics(stats.logprobs, batch.rollout_logprobs, batch.packed.loss_mask)
    return figures["mismatch/logprob_abs_diff"]


def test_engine_log_probs_follow_the_policy_through_a_sync(tiny_model_dir: Path) -> None:
    config = VLLMRolloutConfig(placement="separate", gpu_memory_utilization=0.3, dtype="float32")
    engine = VLLMRolloutEngine.start(tiny_model_dir, config, seed=1)
    policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(device="cuda", lr=1e-2, temperature=1.0))
    try:
        batch = _batch(engine)
        assert _gap(policy, batch) < 1e-3  # float32 on both sides, temperature 1, no nucleus
        mask = batch.packed.loss_mask.clone()
        advantages = torch.randn(batch.packed.num_sequences)[batch.packed.sequence_index()]
        update = PolicyUpdate(advantages * mask, mask, None, None, int(mask.sum()))
        policy.train_step(batch.packed, update)
        stale = _gap(policy, batch)
        sync_weights(policy, engine)
        fresh = _batch(engine)
        assert _gap(policy, fresh) < 1e-3 < stale
    finally:
        engine.close()


def test_a_colocated_engine_gives_its_memory_back_while_the_policy_trains(
    tiny_model_dir: Path,
) -> None:
    engine = VLLMRolloutEngine.start(tiny_model_dir, VLLMRolloutConfig(gpu_share=0.3), seed=1)
    try:
        engine.generate(CONVERSATIONS[:2], SAMPLING)
        awake = torch.cuda.mem_get_info()[0]
        engine.release_memory()
        asleep = torch.cuda.mem_get_info()[0]
        policy = TorchPolicy(tiny_model_dir, TorchPolicyConfig(device="cuda"))
        engine.load_weights(policy.export_weights())
        engine.reclaim_memory()
        again = torch.cuda.mem_get_info()[0]
        print(
            f"free GiB awake {awake / 2**30:.2f}, asleep {asleep / 2**30:.2f}, "
            f"reclaimed {again / 2**30:.2f}"
        )
        assert asleep - awake > 0.2 * 2**30  # most of the 30% share comes back
        assert engine.generate(CONVERSATIONS[:2], SAMPLING)[0][0].token_ids
    finally:
        engine.close()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_a_colocated_tensor_parallel_engine_takes_ipc_weights_from_the_ranks_beside_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The run's own components on 2 GPUs: 2 torch ranks and one TP-2 engine in one placement
    group (qwenlong.rl.rollout.colocation), weights by CUDA IPC from each rank's copy."""
    from qwenlong.rl.components import components
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.ray_session import ray_session

    config = TrainConfig(
        model=str(tiny_model_dir),
        data={"train": ["unused.parquet"]},
        steps=1,
        rollout={
            "backend": "vllm",
            "num_workers": 1,
            "num_cpus_per_worker": 1,
            "vllm": {
                "tensor_parallel_size": 2,
                "gpu_share": 0.3,
                "weight_transfer": "ipc",
                "dtype": "float32",
            },
        },
        policy={
            "num_workers": 2,
            "num_cpus_per_worker": 1,
            "num_gpus_per_worker": 0.6,
            "torch": {"device": "cuda", "lr": 1e-2},
        },
    )
    with ray_session(config.ray), components(config, tiny_model_dir, tmp_path / "judge") as parts:
        engine, policy = parts.rollout, parts.policy
        batch = _batch(engine)
        assert _gap(policy, batch) < 1e-3
        engine.release_memory()
        mask = batch.packed.loss_mask.clone()
        advantages = torch.randn(batch.packed.num_sequences)[batch.packed.sequence_index()]
        policy.train_step(
            batch.packed, PolicyUpdate(advantages * mask, mask, None, None, int(mask.sum()))
        )
        stale = _gap(policy, batch)
        sync_weights(policy, engine)
        engine.reclaim_memory()
        assert _gap(policy, _batch(engine)) < 1e-3 < stale
