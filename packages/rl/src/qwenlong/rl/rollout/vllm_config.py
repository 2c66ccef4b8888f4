"""Settings of the vLLM rollout engines (`rollout.backend: vllm`, under `rollout.vllm`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qwenlong.core.backends.config import VLLMBackendConfig


class VLLMRolloutConfig(VLLMBackendConfig):
    """vLLM engines for RL rollouts: the serving backend's settings, plus where the engines sit
    and how they report log-probs. `rollout.num_workers` is the number of engines (data
    parallel), `tensor_parallel_size` the GPUs inside each. All defaults are ours."""

    placement: Literal["colocated", "separate"] = "colocated"
    """"colocated": each engine worker shares a training GPU with a policy rank (one Ray
    placement group for both, qwenlong.rl.rollout.colocation; a tensor-parallel engine's
    workers are started by vLLM's Ray executor in its bundles) and sleeps while the policy
    trains (vLLM's sleep mode: its KV cache freed, its weights dropped, then re-streamed from
    the policy); "separate": engines on GPUs of their own, always awake."""
    gpu_share: float = Field(default=0.35, gt=0, lt=1)
    """Colocated: the share of each GPU an engine's Ray actor asks for and vLLM may fill
    (`gpu_memory_utilization` is set to it); the policy worker takes the rest. The paper's
    memory plan (`qwenlong plan --vllm-share`) uses the same figure."""
    logprobs_mode: Literal["processed_logprobs", "raw_logprobs"] = "processed_logprobs"
    """What the engine reports for each sampled token. "processed_logprobs": of the
    distribution it sampled from (temperature applied, then top-p renormalised over the
    nucleus), the behaviour policy mu; with top_p 1 this is the trainer's log_softmax(l / T).
    "raw_logprobs": of the model before temperature (vLLM's default)."""

    weight_transfer: Literal["nccl", "ipc"] | None = None
    """vLLM's own weight transfer after each update (qwenlong.rl.rollout.vllm_transfer):
    "nccl", policy rank 0's GPU broadcasts to every engine worker (placement: separate, since
    NCCL cannot hold two ranks of one GPU); "ipc", each policy rank hands the engine on its GPU
    CUDA IPC handles of its copy (placement: colocated). None: HF tensors streamed through the
    driver in buckets of `weight_sync.bucket_mb` (any placement)."""

    @model_validator(mode="after")
    def _check_placement(self) -> VLLMRolloutConfig:
        if self.weight_transfer == "ipc" and self.placement != "colocated":
            raise ValueError("weight_transfer: ipc needs placement: colocated (the same GPU)")
        if self.weight_transfer == "nccl" and self.placement != "separate":
            raise ValueError(
                "weight_transfer: nccl needs placement: separate (NCCL cannot "
                "put the policy and an engine of one GPU in one group)"
            )
        return self

    @property
    def memory_share(self) -> float:
        """The GPU memory fraction vLLM may use."""
        return self.gpu_share if self.placement == "colocated" else self.gpu_memory_utilization
