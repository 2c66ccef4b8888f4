"""The `qwenlong eval` experiment config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.config import ConfigModel
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.prompt_set import PromptSet


class EvalSampling(ConfigModel):
    """Generation settings. Defaults are the paper's evaluation settings (RECIPE.md section 4)."""

    max_input_tokens: int = Field(default=131072, ge=1)
    """Prompt budget in the target tokenizer's tokens; longer contexts are cut in the middle,
    keeping head and tail (paper: 128K)."""
    max_new_tokens: int = Field(default=50000, ge=1)
    """Generation budget per response (paper: up to 50K new tokens)."""
    temperature: float = Field(default=0.7, ge=0)
    """Paper: 0.7."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    """Paper: 0.95."""
    seed: int = 0
    """Base seed; chunk i samples with seed + i, so a resumed run regenerates exactly what an
    uninterrupted run would have."""

    def to_params(self, n: int, chunk_index: int) -> SamplingParams:
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            n=n,
            seed=self.seed + chunk_index,
        )


class BenchmarkRun(ConfigModel):
    """One benchmark (or one subset of it) to evaluate."""

    name: str
    """A key of the BENCHMARKS registry: docmath, longbench_v2, frames, mrcr, corpusqa, longbench_v1_qa."""
    path: Path | None = None
    """Local file or folder in the benchmark's published format; None loads from the HF hub."""
    subset: str | None = None
    """Benchmark-specific subset or length bin (e.g. "0-128K" for mrcr, "1M" for corpusqa)."""
    limit: int | None = Field(default=None, ge=1)
    """Evaluate only the first `limit` samples (smoke runs)."""

    @property
    def key(self) -> str:
        """The name this run is reported under: "mrcr" or "mrcr@128K-512K" for non-default subsets."""
        return self.name if self.subset is None else f"{self.name}@{self.subset}"


class JudgeSettings(ConfigModel):
    """The LLM judge asked where the rule metric fails (paper: DeepSeek-V3)."""

    model: BackendConfig
    """Backend and model of the judge (typically an OpenAI-compatible server)."""
    max_new_tokens: int = Field(default=512, ge=1)
    """Reply budget: the judge writes a one-or-two-sentence explanation (about 30-80 tokens),
    then its [[YES]]/[[NO]] line; 512 leaves a wide margin, and a reply cut before its tag
    leaves the question pending, not wrong. Add the thinking budget for a reasoning judge.
    Our choice (the paper gives none)."""


class EvalConfig(ConfigModel):
    """`qwenlong eval CONFIG.yaml`: which model answers which benchmarks, and how."""

    model: BackendConfig
    """The model under evaluation."""
    tokenizer: str | None = None
    """Tokenizer for middle truncation and token bins; defaults to `model.model` for the hf and
    vllm backends. None with the openai backend sends full contexts."""
    solver: str = "single_pass"
    """A key of the SOLVERS registry: single_pass; memagent (the memory agent) or routed (single
    pass inside the window, the agent beyond it), registered by `import qwenlong.memagent`."""
    solver_options: dict[str, Any] = Field(default_factory=dict)
    """Extra settings passed to the solver factory, e.g. the memory agent's chunk_tokens and
    memory_tokens; each solver validates its own."""
    benchmarks: list[BenchmarkRun] = Field(min_length=1)
    sampling: EvalSampling = EvalSampling()
    samples_per_question: int = Field(default=1, ge=1)
    """Responses per question; scores average over them (paper: not stated; 1 is ours)."""
    chunk_size: int = Field(default=16, ge=1)
    """Questions per solver call. Each finished chunk is appended to the predictions file, so a
    kill loses at most one chunk. The openai backend runs a chunk's requests concurrently."""
    metrics: Literal["paper", "official", "both"] = "both"
    """Which scoring to report: the paper's (max of cover-EM and judge), the official scorers',
    or both side by side where they differ."""
    judge: JudgeSettings | None = None
    """Without a judge, judged metrics report the rule part alone and the report says so."""
    prompts: PromptSet = PromptSet()
    """Prompt name -> template file (relative to the working directory, like every path here);
    names left out use the project's wording. single_pass and single_pass_choice (the reading
    prompt), judge, and with a memagent or routed solver memagent_update, memagent_final,
    memagent_final_choice and memagent_query_split (known once qwenlong.memagent is imported,
    as the CLI does). Files are checked on load. Ours."""
    bootstrap_resamples: int = Field(default=1000, ge=10)
    """Resamples for the 95% confidence intervals."""
