"""The `vllm` backend: an in-process vLLM engine, for RL rollouts and bulk generation on GPUs.

vLLM is an optional, CUDA-only dependency (the `gpu` extra). It is imported when a backend is
built, never when `qwenlong.core` is imported, so CPU machines install and test everything else;
asking for this backend there fails with one line that says what to install.

Log-probs are vLLM's own: by default those of the model's raw distribution at each sampled
token (before temperature and top-p), which is what RL importance ratios compare against the
trainer's forward pass; at temperature 1 and top-p 1 they are also the sampling distribution's.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable, Sequence
from typing import Any

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation

MISSING_VLLM = (
    "vllm is not installed: it needs a CUDA machine; install the 'gpu' extra (uv sync --extra gpu)"
)


def engine_arguments(config: BackendConfig) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM` from the backend config."""
    settings = config.vllm
    return {
        "model": config.model,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "max_model_len": settings.max_model_len,
        "dtype": settings.dtype,
        "enable_prefix_caching": settings.enable_prefix_caching,
    }


def sampling_arguments(sampling: SamplingParams) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams`.

    vLLM refuses n > 1 under greedy decoding, where every sample would be the same anyway, so
    greedy asks for one sample and `VLLMChatModel.generate` repeats it. `logprobs=0` asks for
    the sampled token's log-prob alone, with no top alternatives.
    """
    greedy = sampling.temperature == 0
    return {
        "n": 1 if greedy else sampling.n,
        "temperature": sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "logprobs": 0 if sampling.logprobs else None,
    }


def _sampled_logprobs(output: Any) -> list[float]:
    """The log-prob of each sampled token, from vLLM's per-position {token id: Logprob} maps."""
    if output.logprobs is None:
        raise BackendError("vllm returned no log-probs although they were requested")
    return [
        float(position[token_id].logprob)
        for position, token_id in zip(output.logprobs, output.token_ids, strict=True)
    ]


def to_completions(request_output: Any, sampling: SamplingParams) -> list[Completion]:
    """One vLLM `RequestOutput` as `sampling.n` completions, ordered by sample index."""
    prompt_tokens = len(request_output.prompt_token_ids or [])
    completions = [
        Completion(
            text=output.text,
            token_ids=list(output.token_ids),
            logprobs=_sampled_logprobs(output) if sampling.logprobs else None,
            finish_reason=output.finish_reason or "stop",
            prompt_tokens=prompt_tokens,
        )
        for output in sorted(request_output.outputs, key=lambda o: o.index)
    ]
    if len(completions) == 1 and sampling.n > 1:  # greedy: one sample stands for all n
        completions += [copy.deepcopy(completions[0]) for _ in range(sampling.n - 1)]
    return completions


class VLLMChatModel:
    """A `ChatModel` over an in-process `vllm.LLM`."""

    def __init__(self, llm: Any, name: str, sampling_params: Callable[..., Any]) -> None:
        """`llm` is a `vllm.LLM` (or anything with its `chat`), `sampling_params` the class
        `vllm.SamplingParams`; both are passed in so the conversion logic is testable alone."""
        self.name = name
        self._llm: Any = llm
        self._sampling_params = sampling_params

    @classmethod
    def from_config(cls, config: BackendConfig) -> VLLMChatModel:
        """Start the engine for `config.model` with `config.vllm`'s settings."""
        try:
            import vllm
        except ImportError as err:
            raise BackendError(MISSING_VLLM) from err
        try:
            llm = vllm.LLM(**engine_arguments(config))
        except (OSError, ValueError) as err:
            message = " ".join(str(err).split())
            raise BackendError(f"vllm could not load {config.model}: {message}") from err
        return cls(llm, config.model, vllm.SamplingParams)

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """All conversations in one engine call; vLLM schedules and batches them itself."""
        if not conversations:
            return []
        if self._llm is None:
            raise BackendError(f"the vllm backend for {self.name} is closed")
        params = self._sampling_params(**sampling_arguments(sampling))
        messages = [[dict(message) for message in conversation] for conversation in conversations]
        try:
            outputs = self._llm.chat(messages, sampling_params=params, use_tqdm=False)
        except ValueError as err:  # e.g. a prompt longer than max_model_len
            raise BackendError(f"vllm rejected the request: {' '.join(str(err).split())}") from err
        return [to_completions(output, sampling) for output in outputs]

    def close(self) -> None:
        """Drop the engine so its worker processes exit and its GPU memory is freed."""
        if self._llm is None:
            return
        self._llm = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
