"""Settings of generator B, corpus-level numerical questions (the `synth.numerical` section).

The paper follows CorpusQA but publishes none of these knobs; every default here is our choice,
sized so the fictional world's annual reports give a few hundred well-posed questions.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from qwenlong.core.config import ConfigModel

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
"""Template difficulty levels; a sample's `difficulty` is the level's position (1, 2, 3)."""


class ProseSchemaConfig(ConfigModel):
    """LLM schema extraction from prose: figures stated in running text, as table rows."""

    enabled: bool = True
    """Run it when the pipeline has an LLM; without one this path is skipped (and reported)."""
    only_without_tables: bool = True
    """Read only documents that fail the statistical-table filter: where tables exist, the
    table reader is exact and the LLM would only add copies. Our choice."""
    max_documents: int | None = Field(default=None, ge=1)
    """Read at most this many documents (the first ones in corpus order); None: all."""
    chunk_chars: int = Field(default=8000, ge=1)
    """Documents longer than this are read in paragraph-aligned chunks of about this size, so
    each request fits a small model's window. Our choice."""
    max_retries: int = Field(default=2, ge=0)
    """Re-asks per chunk after an invalid reply (the validation error is shown to the model)."""
    max_new_tokens: int = Field(default=1024, ge=16)
    temperature: float = Field(default=0.0, ge=0.0)
    """0: greedy, so the same model and text give the same rows."""


class ParaphraseConfig(ConfigModel):
    """Optional LLM rewording of template questions, kept only if nothing checked changed."""

    enabled: bool = True
    """Paraphrase when the pipeline has an LLM; without one, template wording is used."""
    max_new_tokens: int = Field(default=256, ge=16)
    temperature: float = Field(default=0.7, ge=0.0)
    """Some randomness gives varied wording; the checks reject any drift in content."""
    max_length_ratio: float = Field(default=2.5, gt=1.0)
    """A paraphrase longer than this many times the template question is rejected (a model
    that starts answering or explaining). Our choice."""


class NumericalConfig(ConfigModel):
    """Generator B: tables -> one DuckDB long table -> SQL templates -> questions."""

    num_samples: int = Field(default=200, ge=0)
    """Questions to generate at most (fewer when the tables cannot support more distinct ones)."""
    min_numeric_cells: int = Field(default=8, ge=1)
    """A document is kept when its tables hold at least this many numeric cells (CorpusQA keeps
    "documents with rich statistical tables"; the threshold is ours: two metrics by four years,
    or a short report's three metrics by three years)."""
    level_weights: dict[str, float] = Field(
        default_factory=lambda: {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    )
    """Relative frequency of easy, medium and hard templates. Our choice: uniform."""
    templates: tuple[str, ...] = ()
    """SQL templates to use (names in `SQL_TEMPLATES`); empty: all of them."""
    group_size: tuple[int, int] = (3, 5)
    """Fewest and most entities compared in one cross-entity question. Each one's documents
    join the context, so this bounds the evidence a question needs. Our choice."""
    decimals: int = Field(default=2, ge=0, le=6)
    """Numeric answers are rounded half away from zero to this many decimals, and the question
    asks for the same rounding."""
    empty_fraction: float = Field(default=0.25, ge=0.0, le=1.0)
    """Share of filter questions whose threshold is set so that no entity qualifies (an empty
    result is a legal answer, stored as "none"). Our choice."""
    attempts_per_sample: int = Field(default=20, ge=1)
    """Template draws allowed per wanted sample before giving up: draws fail when a template
    does not fit the data (too few entities, ties) or repeats an earlier query."""
    entity_noun: tuple[str, str] = ("company", "companies")
    """Singular and plural word for the entities in questions; change for other corpora
    (("country", "countries")). Default for annual reports."""
    prose: ProseSchemaConfig = ProseSchemaConfig()
    paraphrase: ParaphraseConfig = ParaphraseConfig()

    @field_validator("level_weights")
    @classmethod
    def _known_levels(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown level {unknown[0]!r}; known: {', '.join(LEVELS)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("level weights must be non-negative with a positive sum")
        return weights

    @model_validator(mode="after")
    def _check_group_size(self) -> NumericalConfig:
        low, high = self.group_size
        if not 2 <= low <= high:
            raise ValueError(
                f"group_size must be (low, high) with 2 <= low <= high, got {low, high}"
            )
        return self
