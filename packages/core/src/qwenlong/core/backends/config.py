"""Which chat-model backend to use and how to reach it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qwenlong.core.config import ConfigModel


class HFBackendConfig(ConfigModel):
    """transformers on CPU or GPU."""

    device: str = "cpu"
    """Torch device: "cpu", "cuda", "cuda:1", or "auto" (CUDA when present, else CPU)."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Weights dtype. float32 on CPU; bfloat16 is the usual choice on GPU."""
    batch_size: int = Field(default=8, ge=1)
    """Conversations decoding together at most (each expanded n times for n samples); the
    place of one that finishes goes to the next waiting one."""
    torch_threads: int | None = None
    """torch intra-op threads; set 1 when several workers share few cores."""


class OpenAIBackendConfig(ConfigModel):
    """Any OpenAI-compatible chat endpoint (`vllm serve`, `qwenlong serve`, hosted APIs)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    """Server root including /v1."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key; an unset variable sends no key."""
    max_concurrency: int = Field(default=16, ge=1)
    """Requests in flight at once."""
    max_retries: int = Field(default=5, ge=0)
    """Retries on 429, 5xx, connection errors and timeouts, with exponential backoff."""
    backoff_s: float = Field(default=1.0, gt=0)
    """First backoff delay; doubles on each retry (with jitter), capped at 60 s."""
    timeout_s: float = Field(default=600.0, gt=0)
    """Per-request time limit."""
    return_token_ids: bool = False
    """Send vLLM's `return_token_ids` extension so choices carry token ids; hosted APIs reject
    unknown fields. Our choice."""


class VLLMBackendConfig(ConfigModel):
    """In-process vLLM engine (GPU only; imported lazily)."""

    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    max_model_len: int | None = None
    """Context window; None takes the model's own."""
    dtype: str = "auto"
    enable_prefix_caching: bool = True


class BackendConfig(ConfigModel):
    """A chat model: which backend, which model, and the backend's own settings."""

    backend: Literal["hf", "openai", "vllm"] = "hf"
    model: str
    """Local model directory (hf, vllm) or the served model name (openai)."""
    hf: HFBackendConfig = HFBackendConfig()
    openai: OpenAIBackendConfig = OpenAIBackendConfig()
    vllm: VLLMBackendConfig = VLLMBackendConfig()
