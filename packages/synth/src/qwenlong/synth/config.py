"""The `qwenlong synth` experiment config: one section per stage, each owned by its package."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.config import ConfigModel
from qwenlong.synth.assemble.config import AssemblyConfig
from qwenlong.synth.corpus.ingest import IngestConfig
from qwenlong.synth.dialogue.config import DialogueConfig
from qwenlong.synth.filter.config import FilterConfig
from qwenlong.synth.kg.config import KGConfig
from qwenlong.synth.mase.config import MaseConfig
from qwenlong.synth.numerical.config import NumericalConfig
from qwenlong.synth.verify.config import VerifyConfig
from qwenlong.synth.world.config import WorldConfig


class CorpusConfig(ConfigModel):
    """Where documents come from (RECIPE.md section 1: the paper's ~82K-document corpus)."""

    source: Literal["world", "ingest", "both"] = "world"
    """world: the seeded fictional world (keeps a ground truth, the embedded default); ingest:
    local folders and HF datasets; both: the world's documents followed by the ingested ones."""
    world: WorldConfig = WorldConfig()
    ingest: IngestConfig = IngestConfig()


class ExtractionConfig(ConfigModel):
    """Triple extraction for the knowledge-graph generator."""

    extractor: Literal["auto", "rule", "llm"] = "auto"
    """auto: the LLM extractor when `llm` is configured, else the rule extractor (infoboxes,
    tables, fixed prose patterns). The LLM extractor's own settings live in
    `generators.kg_multihop.llm_extractor`."""
    batch_documents: int = Field(default=32, ge=1)
    """Documents per extraction call; each finished batch is written, so a killed run never
    extracts a finished document again. With the openai backend a batch runs concurrently."""


class GeneratorsConfig(ConfigModel):
    """The generators to run; null disables one."""

    kg_multihop: KGConfig | None = KGConfig()
    """A: knowledge-graph multi-hop, reading and multiple-choice questions."""
    corpus_numerical: NumericalConfig | None = NumericalConfig()
    """B: corpus-level numerical questions through SQL (the CorpusQA method)."""
    mase: MaseConfig | None = MaseConfig()
    """C: multi-agent self-evolution; needs `llm`, skipped (and reported) without one."""
    dialogue_needles: DialogueConfig | None = DialogueConfig()
    """MRCR-style dialogue memory with a dense 0..1 answer."""


class SynthConfig(ConfigModel):
    """`qwenlong synth CONFIG.yaml --out DIR`: corpus in, verified TaskSample dataset out."""

    seed: int = 0
    """Seeds every stage (each stage and generator draws from its own stream)."""
    tokenizer: str
    """Target tokenizer (an HF model or tokenizer folder): every length is counted in its tokens."""
    llm: BackendConfig | None = None
    """Model for LLM extraction, question rewriting and MASE; None runs rule and template paths."""
    judge: BackendConfig | None = None
    """LLM judge where rule metrics fail (MASE verification, robustness checks); optional."""
    solver: BackendConfig | None = None
    """The base model that verification and difficulty bins run (the paper uses the model to be
    trained); None uses `llm`; with neither, verification is skipped and reported."""
    corpus: CorpusConfig = CorpusConfig()
    extraction: ExtractionConfig = ExtractionConfig()
    generators: GeneratorsConfig = GeneratorsConfig()
    assembly: AssemblyConfig = AssemblyConfig()
    verify: VerifyConfig = VerifyConfig()
    filter: FilterConfig = FilterConfig()
