"""Context extension: candidate samples padded with distractor documents to target token lengths."""

from qwenlong.synth.assemble.config import AssemblyConfig
from qwenlong.synth.assemble.extend import (
    TARGET_ASSIGNMENTS,
    Assembler,
    AssemblyResult,
    AssemblySkip,
    assemble_samples,
    cut_to_tokens,
    extend_context,
)
from qwenlong.synth.assemble.joins import ContextCounter
from qwenlong.synth.assemble.word_ends import additive_at_word_ends, tokenizer_corpus

__all__ = [
    "TARGET_ASSIGNMENTS",
    "Assembler",
    "AssemblyConfig",
    "AssemblyResult",
    "AssemblySkip",
    "ContextCounter",
    "additive_at_word_ends",
    "assemble_samples",
    "cut_to_tokens",
    "extend_context",
    "tokenizer_corpus",
]
