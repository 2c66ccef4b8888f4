"""Generator A: knowledge-graph multi-hop QA, and the LLM triple extractor.

Entry points: `KGMultihopGenerator(KGConfig, triples)` (a synth `Generator` named
"kg_multihop") and `LLMTripleExtractor(chat_model, LLMExtractConfig)` (a `TripleExtractor`).
The pieces are importable on their own: `build_graph`, `PathSampler`, `Describer`,
`PARADIGMS`, `QuestionRewriter`.
"""

from qwenlong.synth.kg.config import (
    GraphConfig,
    KGConfig,
    LLMExtractConfig,
    ObfuscationConfig,
    ParadigmCounts,
    PathConfig,
    RewriteConfig,
)
from qwenlong.synth.kg.generator import GENERATOR_NAME, KGMultihopGenerator
from qwenlong.synth.kg.graph import KnowledgeGraph, build_graph
from qwenlong.synth.kg.llm_extract import ExtractionStats, LLMTripleExtractor

__all__ = [
    "GENERATOR_NAME",
    "ExtractionStats",
    "GraphConfig",
    "KGConfig",
    "KGMultihopGenerator",
    "KnowledgeGraph",
    "LLMExtractConfig",
    "LLMTripleExtractor",
    "ObfuscationConfig",
    "ParadigmCounts",
    "PathConfig",
    "RewriteConfig",
    "build_graph",
]
