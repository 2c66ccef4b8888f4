"""Generator B: corpus-level numerical questions answered by SQL (the CorpusQA method).

    for each wanted sample:
        level    ~ level_weights                     (easy / medium / hard)
        query    = template.build(catalog, rng)      (metric, entities, years; well posed)
        rows     = DuckDB(query.sql)                 (the ground truth)
        answers  = answer_strings(rows)              (rounded number, entity, list or "none")
        question = a phrasing of the template        (optionally an LLM paraphrase, checked)

Candidates leave `context` empty; `provenance.source_documents` holds every document that
prints a row the query reads (the `facts` rows behind each `metric_values` row in its scope),
and `provenance.sql` the executed query. With no LLM the generator runs entirely on its rule
and template paths; `mode` says which paths ran. `meta["query"]` holds the template's slots
(entities, years, aggregate, threshold, ...) as JSON, so an audit can recompute the answer
without SQL.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.synth.interfaces import Corpus, Counts, GenerationContext
from qwenlong.synth.numerical.config import LEVELS, NumericalConfig
from qwenlong.synth.numerical.corpus_table import CorpusTable, ExtractionStats, build_corpus_table
from qwenlong.synth.numerical.factdb import RowRead, rows_read, run_query
from qwenlong.synth.numerical.paraphrase import ParaphraseStats, QuestionParaphraser
from qwenlong.synth.numerical.questions import (
    EMPTY_ANSWER,
    QuestionText,
    answer_strings,
    render_question,
)
from qwenlong.synth.numerical.sql_templates import SQL_TEMPLATES, Query, SqlTemplate, decimal_text

GENERATOR_NAME = "corpus_numerical"


def sample_id(sql: str) -> str:
    """Stable id: a hash of the generator name and the SQL (rewording keeps the id)."""
    digest = hashlib.sha256(f"{GENERATOR_NAME}\n{sql}".encode()).hexdigest()
    return f"{GENERATOR_NAME}-{digest[:16]}"


@dataclass
class Draft:
    """A drawn, executed query before its question is final."""

    query: Query
    answers: list[str]
    read: list[RowRead]
    text: QuestionText
    question: str = ""
    """The final question: the template wording or an accepted paraphrase."""
    paraphrased: bool = False


@dataclass
class NumericalReport:
    """What one `generate` call did: modes, extraction, drawing, for the synthesis report."""

    modes: dict[str, str] = field(default_factory=dict)
    """Stage -> how it ran: tables "rule", prose "llm" or why skipped, questions "template" or
    "template + llm paraphrase"."""
    extraction: ExtractionStats = field(default_factory=ExtractionStats)
    facts: int = 0
    """Rows of the aligned long table."""
    conflicts: int = 0
    """(entity, year, metric) keys left out because documents disagree."""
    samples: int = 0
    per_template: Counter[str] = field(default_factory=Counter)
    per_level: Counter[str] = field(default_factory=Counter)
    empty_results: int = 0
    unfit: Counter[str] = field(default_factory=Counter)
    """Template -> draws that did not fit the data (returned no query)."""
    repeats: int = 0
    """Draws that repeated an earlier query."""
    paraphrase: ParaphraseStats | None = None


class CorpusNumericalGenerator:
    """`Generator` B: SQL over one cross-document table built from the corpus's tables."""

    name = GENERATOR_NAME

    def __init__(self, config: NumericalConfig | None = None) -> None:
        self.config = config or NumericalConfig()
        names = self.config.templates or tuple(SQL_TEMPLATES.names())
        templates = [SQL_TEMPLATES.get(name) for name in names]
        self.by_level: dict[str, list[SqlTemplate]] = {
            level: [t for t in templates if t.level == level] for level in LEVELS
        }
        self.weights = [
            self.config.level_weights.get(level, 0.0) if self.by_level[level] else 0.0
            for level in LEVELS
        ]
        if sum(self.weights) <= 0:
            raise ConfigError(
                "synth.numerical: no template of a level with positive weight; "
                f"templates {list(names)}, level_weights {self.config.level_weights}"
            )
        self.report = NumericalReport()
        self.stats = Counts()
        """Empty: what a run did is in `report` (modes, extraction, draws), kept in memory."""
        self.table: CorpusTable | None = None
        """The long table of the last `generate` call (kept for audits and tests)."""

    @property
    def mode(self) -> str:
        """How the last run's stages ran, e.g. "tables=rule prose=skipped: no LLM ..."."""
        return "; ".join(f"{stage}={how}" for stage, how in self.report.modes.items())

    def generate(self, corpus: Corpus, ctx: GenerationContext) -> Iterator[TaskSample]:
        """Candidate numerical samples (context not yet assembled), deterministic for ctx.rng."""
        report = self.report = NumericalReport()
        table = self.table = build_corpus_table(corpus, self.config, ctx)
        report.extraction = table.stats
        report.facts, report.conflicts = len(table.alignment.facts), table.catalog.conflicts
        report.modes = {"tables": "rule", "prose": table.stats.prose_mode}
        paraphraser = None
        if ctx.llm is not None and self.config.paraphrase.enabled:
            seed = ctx.rng.randrange(2**31)
            paraphraser = QuestionParaphraser(ctx.llm, self.config.paraphrase, seed)
            report.modes["questions"] = "template + llm paraphrase"
        else:
            report.modes["questions"] = "template"
        if not table.catalog.values:
            ctx.log(f"{self.name}: no figures found in {len(corpus.documents)} documents")
            return
        drafts = self._draw(table, ctx)
        if paraphraser is not None:
            self._paraphrase(drafts, paraphraser)
            report.paraphrase = paraphraser.stats
        for draft in drafts:
            yield self._sample(draft)
        ctx.log(f"{self.name}: {report.samples} samples ({self.mode})")

    def _draw(self, table: CorpusTable, ctx: GenerationContext) -> list[Draft]:
        config, report = self.config, self.report
        drafts: list[Draft] = []
        seen: set[str] = set()
        budget = config.num_samples * config.attempts_per_sample
        while len(drafts) < config.num_samples and budget > 0:
            budget -= 1
            level = ctx.rng.choices(LEVELS, weights=self.weights)[0]
            chosen = ctx.rng.choice(self.by_level[level])
            query = chosen.build(table.catalog, ctx.rng, config)
            if query is None:
                report.unfit[chosen.name] += 1
                continue
            if query.sql in seen:
                report.repeats += 1
                continue
            seen.add(query.sql)
            answers = answer_strings(query, run_query(table.conn, query.sql), config.decimals)
            if answers is None:
                report.unfit[chosen.name] += 1
                continue
            text = render_question(query, ctx.rng, config)
            read = rows_read(table.conn, query.scope)
            drafts.append(Draft(query, answers, read, text, question=text.question))
        return drafts

    def _paraphrase(self, drafts: list[Draft], paraphraser: QuestionParaphraser) -> None:
        for draft, reworded in zip(
            drafts, paraphraser.paraphrase([d.text for d in drafts]), strict=True
        ):
            if reworded is not None:
                draft.question, draft.paraphrased = reworded, True

    def _sample(self, draft: Draft) -> TaskSample:
        query, report = draft.query, self.report
        empty = query.shape == "entities" and draft.answers == [EMPTY_ANSWER]
        report.samples += 1
        report.per_template[query.template] += 1
        report.per_level[query.level] += 1
        report.empty_results += empty
        chain = [
            f"{r.entity} | {r.metric} | {r.year} | {decimal_text(Decimal(repr(r.value)))} "
            f"{r.unit} | {', '.join(r.doc_ids)}".replace("  ", " ")
            for r in draft.read
        ]
        chain.append(f"SQL result: {'; '.join(draft.answers)}")
        documents = sorted({doc for r in draft.read for doc in r.doc_ids})
        return TaskSample(
            id=sample_id(query.sql),
            task_type="numerical",
            question=draft.question,
            instruction=draft.text.instruction,
            answers=list(draft.answers),
            answer_kind="number" if query.shape == "number" else "text",
            provenance=Provenance(
                generator=GENERATOR_NAME,
                source_documents=documents,
                reasoning_chain=chain,
                sql=query.sql,
            ),
            difficulty=float(LEVELS.index(query.level) + 1),
            meta={
                "template": query.template,
                "level": query.level,
                "metric": query.slots.metric,
                "unit": query.slots.unit,
                "question_source": "llm" if draft.paraphrased else "template",
                "empty_result": "true" if empty else "false",
                "query": json.dumps(asdict(query.slots), sort_keys=True),
            },
        )
