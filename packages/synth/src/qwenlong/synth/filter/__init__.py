"""Filters after generation: difficulty balancing, near-duplicate removal, decontamination."""

from qwenlong.synth.filter.balance import BalanceResult, balance_by_difficulty
from qwenlong.synth.filter.config import (
    BalanceConfig,
    DecontamConfig,
    DedupConfig,
    EvalSetSource,
    FilterConfig,
)
from qwenlong.synth.filter.decontam import (
    DecontamResult,
    EvalText,
    NgramIndex,
    decontaminate,
    eval_texts_from_samples,
    load_eval_texts,
)
from qwenlong.synth.filter.dedup import (
    DedupResult,
    LSHIndex,
    MinHasher,
    estimated_jaccard,
    remove_near_duplicates,
    shingles,
)

__all__ = [
    "BalanceConfig",
    "BalanceResult",
    "DecontamConfig",
    "DecontamResult",
    "DedupConfig",
    "DedupResult",
    "EvalSetSource",
    "EvalText",
    "FilterConfig",
    "LSHIndex",
    "MinHasher",
    "NgramIndex",
    "balance_by_difficulty",
    "decontaminate",
    "estimated_jaccard",
    "eval_texts_from_samples",
    "load_eval_texts",
    "remove_near_duplicates",
    "shingles",
]
