"""The `vllm` rollout engine: RL generation through an in-process `vllm.LLM` (GPU).

What the trainer needs from an engine, and how vLLM gives it:
- the ids trained on are the ids generated from: prompts go in as token ids, rendered by the
  same chat-template renderer as every other engine (qwenlong.core.prompt_ids), and the
  sampled token ids come back with their log-probs (`logprobs=0`: the sampled token's only,
  in `logprobs_mode`, by default the distribution it was sampled from);
- n samples per prompt with the step's seed, temperature, top-p, stop strings and limit;
- new weights after every update: a stream of HF on-disk names, loaded by vLLM's own model
  `load_weights` inside the worker (chunk by chunk, never the whole model at once);
- colocated with the trainer: `release_memory` puts the engine to sleep (KV cache freed,
  weights dropped: they are re-streamed anyway), the next weight stream wakes the weights
  alone, `reclaim_memory` wakes the KV cache before generating.

The `vllm.LLM` and `vllm.SamplingParams` are passed in, so everything but vLLM itself is
tested on CPU against a stand-in with vLLM's interface.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from qwenlong.core.backends.vllm import MISSING_VLLM, sampling_arguments, to_completions
from qwenlong.core.errors import BackendError
from qwenlong.core.hf_weights import StreamCheck
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.prompt_ids import render_prompt_ids
from qwenlong.core.records import Completion, Conversation
from qwenlong.core.safetensors_io import read_specs
from qwenlong.core.tokenizer import load_tokenizer
from qwenlong.rl.interfaces import WeightStream
from qwenlong.rl.rollout.vllm_config import VLLMRolloutConfig
from qwenlong.rl.rollout.vllm_transfer import EnginesClient, TransferPlan


def engine_arguments(model_path: str, config: VLLMRolloutConfig, seed: int) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM` of one rollout engine."""
    return {
        "model": model_path,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.memory_share,
        "max_model_len": config.max_model_len,
        "dtype": config.dtype,
        "enable_prefix_caching": config.enable_prefix_caching,
        "enable_sleep_mode": config.placement == "colocated",
        # Colocated tensor-parallel workers are Ray actors in the run's placement group
        # (qwenlong.rl.rollout.colocation); elsewhere vLLM's default executor.
        **(
            {"distributed_executor_backend": "ray"}
            if config.placement == "colocated" and config.tensor_parallel_size > 1
            else {}
        ),
        "logprobs_mode": config.logprobs_mode,
        "seed": seed,
        **(
            {"weight_transfer_config": {"backend": config.weight_transfer}}
            if config.weight_transfer
            else {}
        ),
    }


def transports_of(config: VLLMRolloutConfig) -> tuple[str, ...]:
    """The weight transports engines of `config` take, preferred first."""
    if config.weight_transfer is None:
        return ("stream",)
    return (f"vllm_{config.weight_transfer}", "stream")


def make_plan(
    config: VLLMRolloutConfig, address: tuple[str, int], targets: list[Any]
) -> TransferPlan:
    """The transfer of the engines `targets` (each with `tensor_parallel_size` workers) from
    policy ranks whose rank 0 is at `address` (the NCCL group's meeting point)."""
    client = EnginesClient(targets)
    if config.weight_transfer == "ipc":
        return TransferPlan("ipc", client)
    host, port = address
    workers = len(targets) * config.tensor_parallel_size
    return TransferPlan("nccl", client, host, port, 1 + workers)


def _load_chunk(model: Any, chunk: list[tuple[str, Tensor]]) -> None:
    """Inside a vLLM worker: vLLM's own loader maps HF on-disk names onto its fused layout
    (and, under tensor parallel, takes this worker's slice)."""
    model.load_weights(weights=iter(chunk))


class VLLMRolloutEngine:
    """A `RolloutEngine` over one in-process `vllm.LLM`."""

    def __init__(
        self,
        llm: Any,
        sampling_params: Callable[..., Any],
        tokenizer: Any,
        name: str,
        config: VLLMRolloutConfig,
    ) -> None:
        self.llm, self.sampling_params, self.tokenizer = llm, sampling_params, tokenizer
        self.name, self.config = name, config
        self.weight_transports = transports_of(config)
        self.sleeps = config.placement == "colocated"
        """Colocated: sleep while the policy trains."""
        self.asleep = False
        self.weights_awake = True
        self._expected: dict[str, tuple[int, ...]] | None = None

    @classmethod
    def start(cls, model_path: str | Path, config: VLLMRolloutConfig, seed: int = 0) -> Any:
        """Start vLLM on `model_path` (the policy's starting point)."""
        try:
            import vllm
        except ImportError as err:
            raise BackendError(MISSING_VLLM) from err
        path = str(model_path)
        tokenizer = load_tokenizer(path)
        try:
            llm = vllm.LLM(**engine_arguments(path, config, seed))
        except (OSError, ValueError) as err:
            raise BackendError(f"vllm could not load {path}: {' '.join(str(err).split())}") from err
        return cls(llm, vllm.SamplingParams, tokenizer, path, config)

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """The token ids `generate` feeds vLLM for each conversation."""
        return [render_prompt_ids(self.tokenizer, c, i) for i, c in enumerate(conversations)]

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, in input order, one engine call."""
        if not conversations:
            return []
        self._awake()
        prompts = [{"prompt_token_ids": ids} for ids in self.prompt_ids(conversations)]
        params = self.sampling_params(**sampling_arguments(sampling))
        try:
            outputs = self._llm().generate(prompts, sampling_params=params, use_tqdm=False)
        except ValueError as err:  # e.g. a prompt longer than max_model_len
            raise BackendError(f"{self.name}: vllm rejected the request: {err}") from None
        return [to_completions(output, sampling) for output in outputs]

    def load_weights(self, weights: WeightStream) -> None:
        """A whole stream of HF on-disk named tensors into the engine."""
        receiver = self.weight_receiver()
        for name, tensor in weights:
            receiver.receive(name, tensor)
        receiver.finish()

    def weight_receiver(self) -> _VLLMReceiver:
        """A receiver for one stream fed in pieces; the weights are woken first."""
        if self.asleep and not self.weights_awake:
            self._llm().wake_up(tags=["weights"])
            self.weights_awake = True
        return _VLLMReceiver(self)

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """{HF on-disk name: shape} of the model's checkpoint: what a weight stream holds."""
        if self._expected is None:
            specs = read_specs(Path(self.name))
            self._expected = {name: tuple(spec.shape) for name, spec in specs.items()}
        return self._expected

    def transfer_call(self, method: str, kwargs: dict[str, Any]) -> None:
        """One control-plane call of vLLM's weight transfer, run in every worker of this
        engine (qwenlong.rl.rollout.vllm_transfer.EnginesClient)."""
        self._llm().collective_rpc(method, kwargs=kwargs)

    def transfer_plan(self, address: tuple[str, int]) -> TransferPlan:
        """The transfer group of this engine and a sender at `address`."""
        return make_plan(self.config, address, [self])

    def release_memory(self) -> None:
        """Colocated: sleep (level 2: KV cache and weights freed; the next sync refills the
        weights). Separate GPUs: nothing."""
        if self.sleeps and not self.asleep:
            self._llm().sleep(level=2)
            self.asleep, self.weights_awake = True, False

    def reclaim_memory(self) -> None:
        """Wake what sleeps (the KV cache, and the weights if no sync came)."""
        self._awake()

    def close(self) -> None:
        """Drop the engine so its workers exit and its GPU memory is freed."""
        if self.llm is None:
            return
        self.llm = None
        gc.collect()

    def _awake(self) -> None:
        if self.asleep:
            if not self.weights_awake:
                raise BackendError(
                    f"{self.name}: woken without weights (sync the policy's weights first)"
                )
            self._llm().wake_up(tags=["kv_cache"])
            self.asleep = False

    def _llm(self) -> Any:
        if self.llm is None:
            raise BackendError(f"rollout engine {self.name}: used after close")
        return self.llm


class _VLLMReceiver:
    """Collects one weight stream into chunks that vLLM's workers load in place, strictly:
    every tensor must be one the model's own checkpoint holds, with its shape, once, and all of
    them must arrive (vLLM's loader would silently skip an unknown name)."""

    CHUNK_TENSORS = 64
    """Tensors per `apply_model` call: one call per tensor would cost a worker round trip
    each (30B has ~19K tensors), the whole stream at once would hold the model twice."""

    def __init__(self, engine: VLLMRolloutEngine) -> None:
        self.engine = engine
        self.check = StreamCheck(engine.expected_shapes(), f"rollout engine {engine.name}")
        self.pending: list[tuple[str, Tensor]] = []

    def receive(self, name: str, tensor: Tensor) -> None:
        self.check.check(name, tensor)
        self.pending.append((name, tensor))
        if len(self.pending) >= self.CHUNK_TENSORS:
            self._flush()

    def finish(self) -> int:
        self._flush()
        return self.check.finish()

    def _flush(self) -> None:
        if self.pending:
            self.engine._llm().apply_model(functools.partial(_load_chunk, chunk=self.pending))
            self.pending = []
