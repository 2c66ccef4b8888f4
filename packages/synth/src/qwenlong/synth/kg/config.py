"""Settings of generator A (knowledge-graph multi-hop QA) and of the LLM triple extractor.

The paper (RECIPE.md section 1) names the steps: triples, a cross-document graph, long paths by
random walk or BFS with sparse documents, obfuscation, four question paradigms, difficulty from
path length. It publishes none of the numbers below; every default is our choice and says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel


class LLMExtractConfig(ConfigModel):
    """How `LLMTripleExtractor` cuts documents, asks the model and checks its JSON."""

    max_piece_chars: int = Field(default=6000, ge=200)
    """Longest piece of a document sent in one prompt, in characters; pieces are cut at
    paragraph, then sentence boundaries. Not published; our choice (about 1.5K tokens)."""
    max_retries: int = Field(default=2, ge=0)
    """Times an invalid reply is sent back with its validation error before the piece counts as
    a failure. Not published; our choice."""
    max_new_tokens: int = Field(default=2048, ge=16)
    """Reply budget per piece. Not published; our choice."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 is greedy: extraction wants the most likely reading, not variety. Our choice."""
    require_grounding: bool = True
    """Drop facts whose head (and non-value tail) does not occur in the piece's text, so an
    invented entity never enters the graph. Our choice."""


class GraphConfig(ConfigModel):
    """How extracted triples become one graph (entity merging and relation clustering)."""

    relation_similarity: float = Field(default=0.95, ge=0.0, le=1.0)
    """Two relation labels outside the synonym table join one cluster when their stemmed forms
    reach this `difflib` ratio. High on purpose: "funded by" and "founded by" score 0.93 stemmed.
    1.0 turns similarity clustering off. Not published; our choice."""
    relation_synonyms: dict[str, str] = Field(default_factory=dict)
    """Extra label -> canonical relation entries, added to the built-in synonym table (labels
    are normalised before lookup). Empty by default."""
    merge_surnames: bool = True
    """Within one document, a one-word person name that ends exactly one longer person name of
    that document ("Park" beside "Ada Park") is the same person: articles name someone in full
    once, then by surname. Our choice."""


class PathConfig(ConfigModel):
    """How reasoning paths are drawn from the graph."""

    min_hops: int = Field(default=2, ge=1)
    """Shortest path for multi-hop questions (a path of length 1 is a reading question)."""
    max_hops: int = Field(default=4, ge=1)
    """Longest path. The paper grows difficulty with path length and gives no cap; our choice."""
    strategies: dict[str, float] = Field(default_factory=lambda: {"random_walk": 0.5, "bfs": 0.5})
    """Path strategies (PATH_STRATEGIES names) and their sampling weights. Our choice."""
    sparsity: Literal["consecutive", "all"] = "consecutive"
    """"consecutive": neighbouring hops must be read from different documents; "all": every hop
    from its own document. The paper asks for nodes "spread sparsely across documents"."""
    dated_selection: bool = True
    """Allow a hop whose head has several tails for the relation when the edge's date tells it
    apart (the question then states the date or asks for the earliest/latest). Our choice."""
    walk_restarts: int = Field(default=20, ge=1)
    """Fresh starts a random walk gets before the draw gives up. Our choice."""
    bfs_frontier: int = Field(default=512, ge=1)
    """Partial paths kept per BFS level (a random subset when more); bounds time and memory on
    large graphs. Our choice."""

    @model_validator(mode="after")
    def _check_range(self) -> PathConfig:
        if self.min_hops > self.max_hops:
            raise ValueError(f"min_hops {self.min_hops} exceeds max_hops {self.max_hops}")
        if not self.strategies or any(w < 0 for w in self.strategies.values()):
            raise ValueError("strategies needs at least one name with a non-negative weight")
        if sum(self.strategies.values()) <= 0:
            raise ValueError("strategies: the weights sum to zero")
        return self


class ObfuscationConfig(ConfigModel):
    """How entities and dates in a question are replaced by descriptions."""

    enabled: bool = True
    """Describe intermediate entities and dates instead of naming them (paper: on)."""
    describe_anchor: bool = True
    """Also describe the start entity when a unique description exists; otherwise it is named.
    Our choice: the paper obfuscates "entities", the start included."""
    max_clues: int = Field(default=2, ge=1, le=3)
    """Most facts one description combines ("a chemist born in Lyon" is one clue). Our choice."""


class RewriteConfig(ConfigModel):
    """Optional LLM rewriting of template questions; rejected rewrites keep the template."""

    enabled: bool = False
    """Ask the generation context's `llm` to reword each question (needs an LLM). Our choice:
    off, so the template path is the default and needs no model."""
    max_new_tokens: int = Field(default=256, ge=16)
    """Reply budget per question. Our choice."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Some variety is the point of rewriting. Our choice."""
    max_length_ratio: float = Field(default=2.0, gt=1.0)
    """Reject a rewrite longer than this many times the template question. Our choice."""
    min_length_ratio: float = Field(default=0.4, gt=0.0, lt=1.0)
    """Reject a rewrite shorter than this fraction of the template question. Our choice."""


class ParadigmCounts(ConfigModel):
    """How many questions of each paradigm to write for one task type."""

    multi_fact: int = Field(default=4, ge=0)
    """Chain questions: follow every hop to the end of the path."""
    temporal: int = Field(default=2, ge=0)
    """Questions that turn on dates: a dated hop picked by its (obfuscated) date or by order,
    or a year as the answer."""
    causal: int = Field(default=2, ge=0)
    """"What links A to Z?" questions: both ends given, the bridge entity asked for."""
    hypothetical: int = Field(default=2, ge=0)
    """"Suppose A had B's relation" questions: the answer follows B's chain, not A's."""


class KGConfig(ConfigModel):
    """Generator A: knowledge-graph multi-hop questions (RECIPE.md section 1, generator A)."""

    multihop: ParadigmCounts = ParadigmCounts()
    """Free-answer questions over paths of `paths.min_hops`..`paths.max_hops` hops."""
    reading: ParadigmCounts = ParadigmCounts(multi_fact=4, temporal=2, causal=0, hypothetical=0)
    """Single-hop, single-document questions. Causal and hypothetical need two hops, so they
    must stay 0."""
    mc: ParadigmCounts = ParadigmCounts(multi_fact=2, temporal=1, causal=1, hypothetical=1)
    """Multiple-choice versions (A-D, three distractors of the answer's kind) of questions over
    paths of 1..`paths.max_hops` hops."""
    domains: tuple[str, ...] = ()
    """Restrict paths to edges read from documents of these domains; empty means all."""
    answer_relations: tuple[str, ...] = ()
    """Keep only paths whose last hop (the one the answer is read from) has one of these graph
    relations, e.g. ("occupation",); empty means any. For task mixes of one answer kind (a
    closed set of values for tiny CPU models, one relation per benchmark slice); a name the
    graph lacks is an error that lists the graph's relations. Our addition."""
    attempts_per_sample: int = Field(default=30, ge=1)
    """Path draws allowed per requested sample before a paradigm stops short. Our choice."""
    instruction: str = "Give the final answer as a short name, value or phrase."
    """Format instruction stored with free-answer samples (`TaskSample.instruction`)."""
    graph: GraphConfig = GraphConfig()
    paths: PathConfig = PathConfig()
    obfuscation: ObfuscationConfig = ObfuscationConfig()
    rewrite: RewriteConfig = RewriteConfig()
    llm_extractor: LLMExtractConfig = LLMExtractConfig()
    """Settings of the LLM triple extractor when the pipeline extracts with a model."""

    @model_validator(mode="after")
    def _check_reading(self) -> KGConfig:
        for name in ("causal", "hypothetical"):
            if getattr(self.reading, name):
                raise ValueError(f"reading.{name} must be 0: a {name} question needs two hops")
        return self
