"""Settings of verification: which checks, how many samples per question, how an output passes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qwenlong.core.config import ConfigModel
from qwenlong.core.interfaces import SamplingParams
from qwenlong.evals.solver import DEFAULT_MAX_INPUT_TOKENS


class VerifyConfig(ConfigModel):
    """Knowledge-grounding and contextual-robustness checks (RECIPE.md section 1).

    The paper names both checks but not k, the sampling settings or the model; the defaults are
    ours, with the sampling of its RL rollouts (temperature 0.7, top-p 0.95).
    """

    enabled: bool = True
    """Run the checks when a model is available; with no model they are skipped and reported so."""
    checks: list[Literal["grounding", "robustness"]] = Field(
        default=["grounding", "robustness"], min_length=1
    )
    """Checks in the order they run. Grounding first: its prompts carry no document, so it is
    cheap and removes samples before the long-context robustness pass pays for them."""
    k: int = Field(default=8, ge=1)
    """Outputs per question in each check; the pass rate is passes / k. 8 matches the GRPO
    group size, so a pass rate predicts how many of a training group's rollouts succeed."""
    temperature: float = Field(default=0.7, ge=0)
    """Sampling temperature (the paper's rollout setting)."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    """Nucleus sampling (the paper's rollout setting)."""
    max_new_tokens: int = Field(default=4096, ge=1)
    """Generation budget per output. Our choice: room for a thinking model to reason on
    synthesized questions; raise it for hard numerical samples."""
    seed: int | None = 0
    """Sampling seed passed to the backend, so a rerun asks the same way; None leaves it unset."""
    chunk_size: int = Field(default=64, ge=1)
    """Questions per solver call; each finished chunk is appended to the check's JSONL store, so
    a killed run loses at most one chunk. Our choice."""
    max_input_tokens: int = Field(default=DEFAULT_MAX_INPUT_TOKENS, ge=1)
    """Prompt budget when a tokenizer is given (contexts are middle-truncated to fit, as in
    evaluation): the paper's 128K."""
    grounding_max_pass_rate: float = Field(default=0.0, ge=0, lt=1)
    """A sample is answerable from knowledge, and dropped, when its pass rate without documents
    exceeds this. 0 drops on any correct output (the paper's rule). For 4-way multiple choice a
    guesser passes at least once with probability 1 - 0.75^k (90% at k=8); raising this to
    about 0.5 drops only samples answered well above chance."""
    pass_value: float = Field(default=1.0, gt=0, le=1)
    """An output passes when the scorer calls it correct or its score value reaches this. 1.0 is
    the scorer's own verdict; a lower value counts near-misses of dense scores (dialogue needles,
    graded by a similarity ratio) as passes. Binary scores are 0 or 1, so they are unaffected."""

    def sampling(self, k: int) -> SamplingParams:
        """The sampling parameters of a check that asks each question `k` times."""
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            n=k,
            seed=self.seed,
        )
