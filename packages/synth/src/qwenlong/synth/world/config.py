"""Size and shape knobs of the fictional world.

Every default is our choice (the paper has no fictional world): small enough that the default
world (about 60 documents) builds in well under a second on one core, with each count scaling
linearly to thousands of documents.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel


class WorldConfig(ConfigModel):
    """How big the world is and how its documents look. Defaults are ours (not published)."""

    seed: int = 0
    """Seeds every random choice; the same config always builds the same world, byte for byte."""
    n_countries: int = Field(default=3, ge=1)
    """Countries; each gets an article and holds some of the cities."""
    n_places: int = Field(default=8, ge=1)
    """Cities (places), spread over the countries; each gets an article."""
    n_people: int = Field(default=24, ge=4)
    """People; each gets an article. At least 4 so dialogues and event participants can be drawn."""
    n_organisations: int = Field(default=10, ge=2)
    """Organisations: companies (with annual reports) and institutions (universities, institutes)."""
    institution_fraction: float = Field(default=0.3, ge=0.0, le=1.0)
    """Share of organisations that are institutions; at least one of each kind is always made."""
    n_events: int = Field(default=6, ge=0)
    """Events (summits, expos, festivals), each with an organiser, a place and participants."""
    n_dialogues: int = Field(default=4, ge=0)
    """Multi-party dialogue documents."""
    dialogue_speakers: tuple[int, int] = (3, 5)
    """Fewest and most people in one dialogue."""
    dialogue_turns: tuple[int, int] = (24, 40)
    """Fewest and most turns in one dialogue; raise it for long dialogues (memory needles)."""
    dialogue_fact_rate: float = Field(default=0.45, ge=0.0, le=1.0)
    """Share of dialogue turns that state a world fact; the rest is small talk and logistics."""
    report_first_year: int = 2019
    """First fiscal year in the companies' financial tables."""
    report_last_year: int = 2023
    """Last fiscal year; also the world's "present" (nobody is born, hired or founded after it)."""
    years_per_report: int | None = Field(default=None, ge=1)
    """Fiscal years covered by one annual report; None means one report per company for all years."""
    html_table_fraction: float = Field(default=0.3, ge=0.0, le=1.0)
    """Share of annual reports whose tables are HTML `<table>`s instead of markdown tables."""
    spouse_fraction: float = Field(default=0.4, ge=0.0, le=1.0)
    """Share of people who are married to another person in the world."""
    parent_fraction: float = Field(default=0.3, ge=0.0, le=1.0)
    """Share of companies that are subsidiaries of an older company."""
    filler_sentences: tuple[int, int] = (2, 5)
    """Fewest and most fact-free sentences mixed into each article's prose."""
    article_prose: bool = True
    """Write prose after each article's infobox. False leaves infobox-only articles (about 60
    tokens each instead of about 350) whose prose-only facts (residence, CEO, ...) go unstated:
    the short, copyable contexts a tiny model trained from scratch can learn to read on a CPU."""

    @model_validator(mode="after")
    def _check_ranges(self) -> WorldConfig:
        for name in ("dialogue_speakers", "dialogue_turns", "filler_sentences"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(
                    f"{name} must be (low, high) with 0 <= low <= high, got {low, high}"
                )
        if self.dialogue_speakers[0] < 2:
            raise ValueError("dialogue_speakers must allow at least 2 speakers")
        if self.dialogue_speakers[1] > self.n_people:
            raise ValueError("dialogue_speakers cannot exceed n_people")
        if self.report_first_year > self.report_last_year:
            raise ValueError("report_first_year must not be after report_last_year")
        if not 1950 <= self.report_first_year <= 2100:
            raise ValueError("report_first_year must lie in 1950..2100")
        return self

    @property
    def report_years(self) -> list[int]:
        """Every fiscal year with financial figures, in order."""
        return list(range(self.report_first_year, self.report_last_year + 1))
