"""Settings of the multi-agent self-evolution generator (MASE, after SPELL)."""

from __future__ import annotations

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel
from qwenlong.core.interfaces import SamplingParams


class AgentSampling(ConfigModel):
    """How one agent samples. The paper publishes none of these for synthesis."""

    max_new_tokens: int = Field(default=2048, ge=1)
    """Generation budget per response; thinking models need room to reason before the JSON."""
    temperature: float = Field(default=0.7, ge=0)
    """0 means greedy decoding."""
    top_p: float = Field(default=0.95, gt=0, le=1)

    def to_params(self, n: int, seed: int) -> SamplingParams:
        """`SamplingParams` for `n` samples per conversation with `seed`."""
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            n=n,
            seed=seed,
        )


class ProposerSampling(AgentSampling):
    """The proposer's sampling: as `AgentSampling`, but hotter by default."""

    temperature: float = Field(default=1.0, ge=0)
    """1.0: varied questions across the proposals of one slot. Not published; our choice."""


class ClusterConfig(ConfigModel):
    """How related documents are grouped (see `qwenlong.synth.mase.clusters`). Defaults ours."""

    size: int = Field(default=3, ge=1)
    """Documents per cluster (k): the proposer reads them together and may ask across them."""
    min_size: int = Field(default=2, ge=1)
    """Smaller groups are dropped: a cluster of one cannot carry cross-document questions."""
    max_tokens: int = Field(default=24000, ge=1)
    """Token budget of a cluster's documents, so proposer and solver prompts fit the model."""
    max_clusters: int | None = Field(default=None, ge=1)
    """Stop after this many clusters (None: cluster the whole corpus)."""
    min_shared_names: int = Field(default=1, ge=1)
    """Entity names two documents must share to count as related by names."""
    min_word_overlap: float = Field(default=0.12, gt=0, le=1)
    """Jaccard overlap of content-word profiles that counts as related without shared names."""
    profile_words: int = Field(default=150, ge=10)
    """Most frequent content words per document used as its word profile."""

    @model_validator(mode="after")
    def _check_sizes(self) -> ClusterConfig:
        if self.min_size > self.size:
            raise ValueError(f"min_size {self.min_size} exceeds size {self.size}")
        return self


class MaseConfig(ConfigModel):
    """Proposer / solver / verifier rounds over document clusters (RECIPE.md section 1 C).

    SPELL publishes the roles, the history buffer and the verifier's equivalence check; the
    round counts, sample counts and thresholds below are ours.
    """

    tasks: tuple[str, ...] = ("viewpoint", "icl")
    """MASE task kinds (names in `qwenlong.synth.mase.prompts.TASKS`): viewpoint analysis and
    long in-context learning. Unknown names fail when the generator is built."""
    forms: tuple[str, ...] = ("mc", "short")
    """Answer forms (names in `qwenlong.synth.mase.agents.FORMS`): multiple choice (task type
    mc) and short answer (task type reading). Unknown names fail when the generator is built."""
    rounds: int = Field(default=3, ge=1)
    """Self-evolution rounds; from round two the proposer sees the cluster's history."""
    proposals_per_round: int = Field(default=2, ge=1)
    """Proposals per (cluster, task, form) per round, sampled in one call."""
    solver_samples: int = Field(default=4, ge=1)
    """k: independent solver answers per proposal; their pass rate is the difficulty signal."""
    min_pass_rate: float = Field(default=0.25, ge=0, le=1)
    """A proposal is validated when at least this share of solver answers match its answer
    and the share also beats guessing (above 0.25 for four options, above 0 otherwise)."""
    max_pass_rate: float = Field(default=1.0, ge=0, le=1)
    """Proposals whose pass rate exceeds this share are dropped as too easy; 1.0 keeps all and
    leaves difficulty balancing to the pass-rate bins of the verification stage."""
    history_size: int = Field(default=8, ge=1)
    """Validated pairs per cluster shown to the proposer (the most recent ones)."""
    max_answer_words: int = Field(default=12, ge=1)
    """Longest short answer accepted, in words: the reward is cover exact match, which a
    sentence-long answer would make unreliable."""
    shuffle_choices: bool = True
    """Shuffle multiple-choice options (and remap the letter): proposers favour one position."""
    judge_with_generator_llm: bool = False
    """When no judge is given, ask the generator's own LLM where the rule metric fails. Off:
    a model judging its own answers is lenient."""
    max_samples: int | None = Field(default=None, ge=1)
    """Stop once this many samples are validated (None: run every round)."""
    clusters: ClusterConfig = ClusterConfig()
    """Which documents a proposer reads together."""
    proposer: ProposerSampling = ProposerSampling()
    """Proposer sampling: hotter than the solver, for varied questions."""
    solver: AgentSampling = AgentSampling()
    """Solver sampling: the paper's rollout temperature and top-p (0.7, 0.95)."""

    @model_validator(mode="after")
    def _check_rates(self) -> MaseConfig:
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError(
                f"min_pass_rate {self.min_pass_rate} exceeds max_pass_rate {self.max_pass_rate}"
            )
        if not self.tasks or not self.forms:
            raise ValueError("needs at least one task and one form")
        return self
