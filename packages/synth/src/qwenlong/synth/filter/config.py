"""Settings of the filters: difficulty balancing, near-duplicate removal, decontamination."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel


class BalanceConfig(ConfigModel):
    """Difficulty balancing (RECIPE.md section 1): pass-rate bins, the same count from each.

    The paper bins by pass@k "into uniform bins" and samples equally per bin; the number of bins
    and the grouping are not given, so the defaults are ours.
    """

    enabled: bool = True
    """Run balancing; it also needs verified pass rates (see `qwenlong.synth.report.pass_rate`)."""
    num_bins: int = Field(default=4, ge=1)
    """Uniform bins over [0, 1] when `bin_edges` is not set. With k=8 pass rates are multiples of
    1/8, so 4 bins hold two pass counts each."""
    bin_edges: list[float] | None = None
    """Explicit edges, increasing from 0 to 1; bin i is (edges[i], edges[i+1]], the first also
    holding 0. Overrides `num_bins`."""
    per_bin: int | None = Field(default=None, ge=1)
    """Samples kept per bin; None keeps as many as the smallest non-empty bin holds. A bin with
    fewer keeps all of its samples."""
    group_by: Literal["task_type", "overall"] = "task_type"
    """Balance within each task type (each type's difficulty spread is flattened on its own, and
    the RL sampler balances the types anyway) or across all samples at once."""

    @model_validator(mode="after")
    def _check_edges(self) -> BalanceConfig:
        edges = self.bin_edges
        if edges is not None:
            if len(edges) < 2 or edges[0] != 0 or edges[-1] != 1:
                raise ValueError(f"bin_edges must run from 0 to 1, got {edges}")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"bin_edges must increase strictly, got {edges}")
        return self

    def edges(self) -> list[float]:
        """The bin edges in use."""
        if self.bin_edges is not None:
            return list(self.bin_edges)
        return [i / self.num_bins for i in range(self.num_bins + 1)]


class DedupConfig(ConfigModel):
    """Near-duplicate removal by MinHash over word shingles of question + answers, with LSH.

    The paper deduplicates without saying how; MinHash with banding is the usual method for
    corpus-scale near-duplicate search. Defaults are ours.
    """

    enabled: bool = True
    threshold: float = Field(default=0.8, gt=0, le=1)
    """Estimated Jaccard similarity at or above which a later sample is a duplicate of an earlier
    one. Two template questions about different entities differ in a few shingles and stay
    below it; a reworded copy of the same question lands above it."""
    shingle_words: int = Field(default=3, ge=1)
    """Words per shingle. Questions are short, so short shingles keep the sets informative."""
    num_perm: int = Field(default=128, ge=8)
    """MinHash permutations: the estimate's standard error is about sqrt(J(1-J)/num_perm)."""
    bands: int = Field(default=32, ge=1)
    """LSH bands of num_perm / bands rows each. Pairs with similarity s become candidates with
    probability 1 - (1 - s^rows)^bands: with 32 bands of 4 rows, 0.99 at s=0.6, well below the
    threshold, so real duplicates are not missed; each candidate is then checked against the
    threshold on the full signature."""
    seed: int = 0
    """Seeds the permutations, so a run's decisions are reproducible."""

    @model_validator(mode="after")
    def _check_bands(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm {self.num_perm} is not a multiple of bands {self.bands}")
        return self


class EvalSetSource(ConfigModel):
    """One evaluation set to decontaminate against: a registered benchmark read from a path."""

    benchmark: str
    """A `qwenlong.evals.benchmarks.BENCHMARKS` name (docmath, longbench_v2, frames, mrcr,
    corpusqa, longbench_v1_qa)."""
    path: Path
    """Where its published files are (the loader's own format)."""
    subset: str | None = None
    """A published split or bin, as the benchmark's loader takes it (e.g. "hotpotqa")."""


class DecontamConfig(ConfigModel):
    """Decontamination against evaluation sets by word n-gram overlap (RECIPE.md section 1).

    The paper decontaminates against its evaluation sets without saying how; 13-gram overlap is
    the common method (GPT-3's decontamination). Defaults are ours.
    """

    enabled: bool = True
    ngram: int = Field(default=13, ge=1)
    """Words per n-gram. A training sample sharing any one n-gram with an evaluation text is
    contaminated; one shorter than this is contaminated when its whole normalised text equals
    an evaluation question's."""
    include_answers: bool = True
    """Add the gold answers (and the options of multiple choice) to the question on both sides,
    so a copied question-answer pair is caught across the seam between them."""
    benchmarks: list[EvalSetSource] = Field(default=[])
    """Benchmarks whose questions training samples must not overlap."""
    text_files: list[Path] = Field(default=[])
    """Plain UTF-8 text files of evaluation material (one set per file, any layout)."""


class FilterConfig(ConfigModel):
    """The filters after generation: balancing, near-duplicates, decontamination."""

    balance: BalanceConfig = BalanceConfig()
    dedup: DedupConfig = DedupConfig()
    decontam: DecontamConfig = DecontamConfig()
