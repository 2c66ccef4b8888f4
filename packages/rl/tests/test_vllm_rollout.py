"""The vLLM rollout engine against a stand-in with vLLM's interface (`generate` on token-id
prompts, `apply_model`, `sleep`, `wake_up`): the prompt ids are the HF engine's, sampling
reaches vLLM as asked, completions carry ids and log-probs, weight streams load strictly and in
bounded chunks, and a colocated engine sleeps and wakes in the order a training step needs.
vLLM itself runs only on a GPU (`benchmarks/gpu_check.sh`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.safetensors_io import read_sharded
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.rollout.vllm_config import VLLMRolloutConfig
from qwenlong.rl.rollout.vllm_engine import VLLMRolloutEngine, engine_arguments

CONVERSATIONS = [
    [{"role": "user", "content": "Who keeps the lighthouse?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
]


@dataclass
class FakeModel:
    """Stands in for the model inside a vLLM worker: records what `load_weights` got."""

    chunks: list[list[str]] = field(default_factory=list)

    def load_weights(self, weights: Any) -> set[str]:
        names = [name for name, _ in weights]
        self.chunks.append(names)
        return set(names)


@dataclass
class FakeLLM:
    """`vllm.LLM`'s calls the engine makes, answered with vLLM-shaped outputs."""

    model: FakeModel = field(default_factory=FakeModel)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def generate(self, prompts: list[dict], sampling_params: Any, use_tqdm: bool) -> list[Any]:
        assert use_tqdm is False
        self.calls.append(("generate", (prompts, sampling_params)))
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            samples = [
                SimpleNamespace(
                    index=i,
                    text=f"answer {i}",
                    token_ids=(ids[-1], i + 5),
                    logprobs=[
                        {ids[-1]: SimpleNamespace(logprob=-0.5)},
                        {i + 5: SimpleNamespace(logprob=-0.25 * (i + 1))},
                    ],
                    finish_reason="stop",
                )
                for i in range(sampling_params.n)
            ]
            outputs.append(SimpleNamespace(prompt_token_ids=ids, outputs=samples))
        return outputs

    def apply_model(self, func: Any) -> list[Any]:
        self.calls.append(("apply_model", None))
        return [func(self.model)]

    def collective_rpc(self, method: str, kwargs: dict | None = None) -> list[Any]:
        self.calls.append(("collective_rpc", (method, kwargs)))
        return [None]

    def sleep(self, level: int = 1) -> None:
        self.calls.append(("sleep", level))

    def wake_up(self, tags: list[str] | None = None) -> bool:
        self.calls.append(("wake_up", tags))
        return True


def _engine(model_dir: Path, sleeps: bool = True) -> tuple[VLLMRolloutEngine, FakeLLM]:
    llm = FakeLLM()
    config = VLLMRolloutConfig(placement="colocated" if sleeps else "separate")
    engine = VLLMRolloutEngine(
        llm, SimpleNamespace, load_tokenizer(model_dir), str(model_dir), config
    )
    return engine, llm


def test_prompts_go_in_as_the_hf_engines_token_ids_and_samples_come_back(
    tiny_model_dir: Path,
) -> None:
    engine, llm = _engine(tiny_model_dir)
    hf = HFRolloutEngine(tiny_model_dir)
    try:
        assert engine.prompt_ids(CONVERSATIONS) == hf.prompt_ids(CONVERSATIONS)
    finally:
        hf.close()
    sampling = SamplingParams(
        max_new_tokens=7, temperature=0.7, top_p=0.95, n=3, stop=("\n\n",), seed=11, logprobs=True
    )
    groups = engine.generate(CONVERSATIONS, sampling)
    ((call, (prompts, params)),) = llm.calls
    assert call == "generate"
    assert [p["prompt_token_ids"] for p in prompts] == engine.prompt_ids(CONVERSATIONS)
    assert (params.n, params.temperature, params.top_p, params.max_tokens) == (3, 0.7, 0.95, 7)
    assert (params.stop, params.seed, params.logprobs) == (["\n\n"], 11, 0)
    assert [len(group) for group in groups] == [3, 3]
    last = groups[1][2]
    assert last.token_ids == [prompts[1]["prompt_token_ids"][-1], 7]
    assert last.logprobs == [-0.5, -0.75]
    assert last.prompt_tokens == len(prompts[1]["prompt_token_ids"])


def test_a_weight_stream_loads_strictly_in_bounded_chunks(tiny_model_dir: Path) -> None:
    engine, llm = _engine(tiny_model_dir, sleeps=False)
    weights = list(read_sharded(tiny_model_dir))
    engine.load_weights(iter(weights))
    loaded = [name for chunk in llm.model.chunks for name in chunk]
    assert loaded == [name for name, _ in weights]
    assert max(len(chunk) for chunk in llm.model.chunks) <= 64
    with pytest.raises(BackendError, match="never received"):
        engine.load_weights(iter(weights[:-1]))
    with pytest.raises(BackendError, match=r"unknown tensor .model\.extra."):
        engine.load_weights(iter([("model.extra", torch.zeros(1))]))
    name, tensor = weights[0]
    with pytest.raises(BackendError, match=f"tensor '{name}' has shape"):
        engine.load_weights(iter([(name, tensor[:1])]))
    with pytest.raises(BackendError, match="twice"):
        engine.load_weights(iter([weights[0], weights[0]]))


def test_a_colocated_engine_sleeps_through_training_and_wakes_for_the_next_step(
    tiny_model_dir: Path,
) -> None:
    engine, llm = _engine(tiny_model_dir)
    engine.release_memory()  # the policy trains
    with pytest.raises(BackendError, match="woken without weights"):
        engine.reclaim_memory()
    engine.load_weights(read_sharded(tiny_model_dir))  # the sync
    engine.reclaim_memory()
    engine.generate(CONVERSATIONS[:1], SamplingParams(n=1, logprobs=True))
    steps = [(name, arg) for name, arg in llm.calls if name != "apply_model"]
    assert steps[:3] == [("sleep", 2), ("wake_up", ["weights"]), ("wake_up", ["kv_cache"])]
    assert steps[3][0] == "generate"
    assert llm.calls.index(("wake_up", ["weights"])) < llm.calls.index(("apply_model", None))

    separate, calls = _engine(tiny_model_dir, sleeps=False)
    separate.release_memory()
    separate.reclaim_memory()
    assert calls.calls == []


def test_engine_arguments_follow_the_placement() -> None:
    colocated = engine_arguments("/m", VLLMRolloutConfig(gpu_share=0.4), seed=3)
    assert colocated["enable_sleep_mode"] is True
    assert colocated["gpu_memory_utilization"] == 0.4
    assert colocated["logprobs_mode"] == "processed_logprobs" and colocated["seed"] == 3
    separate = VLLMRolloutConfig(placement="separate", tensor_parallel_size=2)
    arguments = engine_arguments("/m", separate, seed=0)
    assert arguments["enable_sleep_mode"] is False and arguments["tensor_parallel_size"] == 2
    assert "distributed_executor_backend" not in arguments  # vLLM's own executor in the actor
    assert "distributed_executor_backend" not in colocated  # one GPU: no executor at all
    # Colocated tensor parallel: the workers are Ray actors in the run's placement group.
    colocated_tp = engine_arguments("/m", VLLMRolloutConfig(tensor_parallel_size=4), seed=0)
    assert colocated_tp["distributed_executor_backend"] == "ray"
    assert colocated_tp["enable_sleep_mode"] is True


def test_without_vllm_the_engine_is_one_line(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwenlong.rl.config import ROLLOUT_BACKENDS, TrainConfig

    monkeypatch.setitem(sys.modules, "vllm", None)
    config = TrainConfig(
        model=str(tiny_model_dir),
        data={"train": ["d.parquet"]},
        steps=1,
        rollout={"backend": "vllm"},
        ray={"enabled": False},
    )
    with pytest.raises(BackendError, match="vllm is not installed"):
        ROLLOUT_BACKENDS.get("vllm")(config, str(tiny_model_dir), None)


# ---- vLLM's own weight transfer (NCCL broadcast): the plan and the control plane ---------


def test_the_engines_own_transfer_is_chosen_when_configured(tiny_model_dir: Path) -> None:
    from qwenlong.rl.weight_sync import sync_weights

    config = VLLMRolloutConfig(placement="separate", tensor_parallel_size=2, weight_transfer="nccl")
    llm = FakeLLM()
    engine = VLLMRolloutEngine(
        llm, SimpleNamespace, load_tokenizer(tiny_model_dir), str(tiny_model_dir), config
    )
    assert engine_arguments("/m", config, 0)["weight_transfer_config"] == {"backend": "nccl"}

    class Policy:
        weight_transports = ("vllm_ipc", "vllm_nccl", "stream")

        def __init__(self) -> None:
            self.plans: list[Any] = []

        def sender_address(self) -> tuple[str, int]:
            return ("10.0.0.7", 29555)

        def send_weights_to_vllm(self, plan: Any) -> None:
            self.plans.append(plan)
            plan.client.init_weight_transfer_engine({"packed": True})
            plan.client.start_weight_update()
            plan.client.update_weights({"names": ["a"]})
            plan.client.finish_weight_update()

    policy = Policy()
    sync_weights(policy, engine)
    (plan,) = policy.plans
    assert (plan.backend, plan.master_address, plan.master_port) == ("nccl", "10.0.0.7", 29555)
    assert plan.world_size == 1 + 2  # the sender and the engine's two tensor-parallel workers
    assert [arg for name, arg in llm.calls if name == "collective_rpc"] == [
        ("init_weight_transfer_engine", {"init_info": {"packed": True}}),
        ("start_weight_update", {}),
        ("update_weights", {"update_info": {"names": ["a"]}}),
        ("finish_weight_update", {}),
    ]
    with pytest.raises(ValueError, match="placement: separate"):
        VLLMRolloutConfig(weight_transfer="nccl")
    with pytest.raises(ValueError, match="placement: colocated"):
        VLLMRolloutConfig(placement="separate", weight_transfer="ipc")
    ipc = VLLMRolloutConfig(weight_transfer="ipc")  # colocated: CUDA IPC on each GPU
    colocated = VLLMRolloutEngine(llm, SimpleNamespace, None, "m", ipc)
    assert colocated.weight_transports == ("vllm_ipc", "stream")
    assert engine_arguments("/m", ipc, 0)["weight_transfer_config"] == {"backend": "ipc"}
    policy.plans.clear()
    sync_weights(policy, colocated)
    assert policy.plans[0].backend == "ipc" and policy.plans[0].everywhere
    default = VLLMRolloutEngine(llm, SimpleNamespace, None, "m", VLLMRolloutConfig())
    assert default.weight_transports == ("stream",)


def test_each_policy_declares_its_export_before_exporting(tiny_model_dir: Path) -> None:
    """vLLM's transfer plans from a declared (name, shape, dtype) list: it must be exactly
    what the export then yields, in order, for both policy backends."""
    from qwenlong.rl.losses import LossConfig
    from qwenlong.rl.megatron.config import MegatronPolicyConfig
    from qwenlong.rl.megatron.policy import MegatronPolicyRank
    from qwenlong.rl.torch_policy import TorchPolicyConfig
    from qwenlong.rl.torch_rank import TorchPolicyRank

    torch.set_num_threads(1)
    ranks = [
        TorchPolicyRank(str(tiny_model_dir), TorchPolicyConfig(), 0, 1),
        MegatronPolicyRank(str(tiny_model_dir), MegatronPolicyConfig(), LossConfig(), 0, 1),
    ]
    for rank in ranks:
        rank.setup(None)
        try:
            declared = rank.export_order()
            exported = [(n, tuple(t.shape), t.dtype) for n, t in rank.export_weights()]
            assert declared == exported
        finally:
            rank.close()
