"""The `memagent:` config section: chunk and memory budgets, step sampling, the router.

Budgets are in the target tokenizer's tokens. The defaults are QwenLong-L1.5's (32K chunks, 15K
memory; RECIPE.md section 3); `preset: memagent` gives MemAgent's (5K chunks, 1K memory). A
preset only fills the budgets the YAML leaves out, so `preset: memagent` with `chunk_tokens: 8000`
keeps the 8000.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel

PRESETS: dict[str, dict[str, int]] = {
    "qwenlong": {"chunk_tokens": 32768, "memory_tokens": 15360},
    "memagent": {"chunk_tokens": 5000, "memory_tokens": 1024},
}
"""Budgets per preset. qwenlong: the paper's "32K" chunk and "15K" memory read as 32768 and
15360. memagent: MemAgent's 5000-token chunks and 1024-token memory (arXiv 2507.02259)."""


class StepSampling(ConfigModel):
    """Sampling of the memory-update steps; unset fields take the caller's (the eval's) values."""

    max_new_tokens: int | None = Field(default=None, ge=1)
    """Budget of one update output (reasoning, memory and plan). None uses the caller's
    max_new_tokens. Not published; an output cut by it keeps the previous memory."""
    temperature: float | None = Field(default=None, ge=0)
    """None uses the caller's temperature (paper's evaluation: 0.7). Not published for steps."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """None uses the caller's top-p (paper's evaluation: 0.95). Not published for steps."""


class RouterConfig(ConfigModel):
    """When to read in one pass and when to use the agent (paper: single pass inside the
    256K window, the agent beyond it)."""

    window_tokens: int = Field(default=262144, ge=1)
    """The model's context window: single pass only when prompt + generation budget fit in it.
    Qwen3-30B-A3B-Thinking-2507 has a 256K native window."""
    single_pass_max_prompt_tokens: int | None = Field(default=None, ge=1)
    """A prompt longer than this goes to the agent even when it fits the window. None: the
    caller's prompt budget (the eval's max_input_tokens) when there is one, else no extra
    limit. Our choice: it keeps single-pass answers free of middle truncation."""
    mode: Literal["auto", "single_pass", "agent"] = "auto"
    """auto decides per sample; the other two force one path (ablations)."""


class MemAgentConfig(ConfigModel):
    """The memory agent (RECIPE.md section 3)."""

    preset: Literal["qwenlong", "memagent"] = "qwenlong"
    """Fills chunk_tokens and memory_tokens when they are not given (see PRESETS)."""
    chunk_tokens: int = Field(default=32768, ge=16)
    """Tokens per document section x_t (paper: 32K; MemAgent: 5000)."""
    memory_tokens: int = Field(default=15360, ge=16)
    """Most tokens of memory carried to the next step; a longer memory is cut in the middle
    (paper: 15K; MemAgent: 1024)."""
    plan_tokens: int = Field(default=1024, ge=1)
    """Most tokens of plan carried to the next step. Not published; our choice."""
    query_split: Literal["rules", "llm", "none"] = "rules"
    """How a sample's question is separated into q_core and q_inst: rules for the known
    templates, an extra model call (falling back to rules), or not at all."""
    split_max_tokens: int = Field(default=1024, ge=16)
    """Output budget of the LLM query split. Our choice."""
    thinking: bool = False
    """The model reasons before answering and closes with `</think>` (Qwen3 Thinking): an
    update output without `</think>` is unfinished reasoning and keeps the previous memory."""
    step: StepSampling = StepSampling()
    """Sampling of the update steps (unset fields follow the caller's sampling)."""
    final_max_tokens: int | None = Field(default=None, ge=1)
    """Budget of the final answer; None uses the caller's max_new_tokens (paper: up to 50K)."""
    router: RouterConfig = RouterConfig()
    """Single pass or agent, per sample (used by the routed solver)."""
    read_chars: int = Field(default=65536, ge=1024)
    """Characters read from a document per block. Together with chunk_tokens it bounds the
    memory a document takes while it is streamed. Our choice."""
    trace_raw_outputs: Literal["never", "failures", "always"] = "failures"
    """Keep each step's raw model output in the trace: never, only when it was discarded, or
    always (large: one full output per step)."""

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill the budgets the preset sets and the input leaves out."""
        if isinstance(data, dict) and isinstance(data.get("preset"), str):
            budgets = PRESETS.get(data["preset"], {})
            return {**budgets, **data}
        return data

    @model_validator(mode="after")
    def _check_window(self) -> MemAgentConfig:
        used = self.chunk_tokens + self.memory_tokens + self.plan_tokens
        if used >= self.router.window_tokens:
            raise ValueError(
                f"chunk_tokens + memory_tokens + plan_tokens = {used} leaves no room in "
                f"router.window_tokens = {self.router.window_tokens}"
            )
        return self
