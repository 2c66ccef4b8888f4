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

__all__ = [
    "TARGET_ASSIGNMENTS",
    "Assembler",
    "AssemblyConfig",
    "AssemblyResult",
    "AssemblySkip",
    "assemble_samples",
    "cut_to_tokens",
    "extend_context",
]
