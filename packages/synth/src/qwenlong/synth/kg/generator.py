"""Generator A: knowledge-graph multi-hop questions (RECIPE.md section 1, generator A).

    triples -> graph (merged entities, clustered relations, per-domain edges)
            -> paths (random walk / BFS, sparse documents, length = difficulty)
            -> questions (four paradigms, obfuscated, reasoning chain kept)
            -> optional LLM rewrite (accepted only when lexical checks pass)
            -> TaskSamples: multihop (>= 2 hops), reading (1 hop, one document), mc (A-D)

With no LLM, or rewriting off, every question is a deterministic template (`mode` "template");
otherwise `mode` is "template+llm_rewrite". For a fixed seed, triples and corpus, the samples and
their ids are the same on every run (rewrites aside, which depend on the model).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.synth.interfaces import Corpus, Counts, GenerationContext, Triple
from qwenlong.synth.kg.choices import ChoiceMaker
from qwenlong.synth.kg.config import KGConfig
from qwenlong.synth.kg.graph import KnowledgeGraph, build_graph
from qwenlong.synth.kg.obfuscate import Describer
from qwenlong.synth.kg.paradigms import PARADIGMS
from qwenlong.synth.kg.paths import PATH_STRATEGIES, Path, PathSampler
from qwenlong.synth.kg.questions import Question, QuestionWriter
from qwenlong.synth.kg.rewrite import QuestionRewriter

GENERATOR_NAME = "kg_multihop"


@dataclass
class _Draft:
    task_type: str
    question: Question
    choices: list[str]
    letter: str
    key: str
    """The sample id (from the template text, so rewrites keep it)."""


@dataclass
class _Tools:
    """What one `generate` call draws with, built once over its graph."""

    sampler: PathSampler
    writer: QuestionWriter
    chooser: ChoiceMaker


def sample_id(task_type: str, question: str, answers: Sequence[str], choices: Sequence[str]) -> str:
    """Stable id: a hash of the generator, task type and template content."""
    payload = json.dumps([GENERATOR_NAME, task_type, question, list(answers), list(choices)])
    return f"{GENERATOR_NAME}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


class KGMultihopGenerator:
    """A `Generator` over triples already extracted from the corpus (rule or LLM extractor)."""

    name = GENERATOR_NAME

    def __init__(self, config: KGConfig, triples: Sequence[Triple]) -> None:
        self.config = config
        self.triples = list(triples)
        self.mode = "template"
        """"template", or "template+llm_rewrite" once a generation ran with rewriting."""
        self.stats = Counts()
        """Counts of the last `generate`: made per task type, and why draws were discarded."""
        self.graph: KnowledgeGraph | None = None
        """The graph of the last `generate` call (for reports and inspection)."""

    def build(self, corpus: Corpus) -> KnowledgeGraph:
        """The graph over triples of the corpus's documents, restricted to `config.domains`."""
        known = [t for t in self.triples if t.doc_id in corpus.by_id]
        self.stats["triples_outside_corpus"] = len(self.triples) - len(known)
        domains = {d.id: d.domain for d in corpus.documents}
        graph = build_graph(known, domains, self.config.graph)
        if self.config.domains:
            graph = graph.restrict(self.config.domains)
        return graph

    def generate(self, corpus: Corpus, ctx: GenerationContext) -> Iterator[TaskSample]:
        """Yield candidate samples (no context yet) in a deterministic order."""
        self.stats = Counts()
        graph = self.graph = self.build(corpus)
        llm = ctx.llm if self.config.rewrite.enabled else None
        self.mode = "template" if llm is None else "template+llm_rewrite"
        ctx.log(
            f"{self.name}: graph with {len(graph.entities())} entities, "
            f"{graph.g.number_of_edges()} facts, {len(graph.relations())} relations; mode {self.mode}"
        )
        self._check_answer_relations(graph)
        drafts = self._draft(graph, ctx.rng)
        texts: list[str | None] = [None] * len(drafts)
        if llm is not None and drafts:
            rewriter = QuestionRewriter(llm, self.config.rewrite, ctx.log)
            texts = rewriter.rewrite([d.question for d in drafts])
            self.stats.update({f"rewrite_{k}": v for k, v in rewriter.stats.items()})
        for draft, text in zip(drafts, texts, strict=True):
            yield self._sample(draft, text)
        short = {k: v for k, v in self.stats.items() if k.startswith("short_")}
        if short:
            ctx.log(f"{self.name}: fewer samples than asked: {short}")

    def _draft(self, graph: KnowledgeGraph, rng: random.Random) -> list[_Draft]:
        """Questions for every (task type, paradigm) count, in config order."""
        config = self.config
        for name in config.paths.strategies:
            PATH_STRATEGIES.get(name)  # an unknown name fails before any work
        tools = _Tools(
            PathSampler(graph, config.paths),
            QuestionWriter(
                graph, Describer(graph, config.obfuscation.max_clues), config.obfuscation, rng
            ),
            ChoiceMaker(graph),
        )
        drafts: list[_Draft] = []
        seen: set[str] = set()
        plan = (("multihop", config.multihop), ("reading", config.reading), ("mc", config.mc))
        for task_type, counts in plan:
            for paradigm_name, count in counts.model_dump().items():
                made = 0
                for _ in range(count * config.attempts_per_sample):
                    if made == count:
                        break
                    outcome = self._attempt(task_type, paradigm_name, tools, rng)
                    if isinstance(outcome, str):
                        self.stats[outcome] += 1
                    elif outcome.key in seen:
                        self.stats["duplicate"] += 1
                    else:
                        seen.add(outcome.key)
                        drafts.append(outcome)
                        made += 1
                self.stats[f"made_{task_type}"] += made
                if made < count:
                    self.stats[f"short_{task_type}_{paradigm_name}"] += count - made
        return drafts

    def _attempt(
        self, task_type: str, paradigm_name: str, tools: _Tools, rng: random.Random
    ) -> _Draft | str:
        """One draw: a path, a question, options for mc; or the reason the draw was dropped."""
        paradigm = PARADIGMS.get(paradigm_name)
        low, high = self._lengths(task_type, paradigm.min_hops)
        if low > high:
            return "no_path"
        strategies = sorted(self.config.paths.strategies)
        weights = [self.config.paths.strategies[n] for n in strategies]
        path = tools.sampler.draw(
            rng,
            rng.randint(low, high),
            rng.choices(strategies, weights)[0],
            lambda p: self._answers_from_allowed_relation(p) and paradigm.accepts(tools.writer, p),
        )
        if path is None:
            return "no_path"
        allowed = {path.hops[0].doc_id} if task_type == "reading" else None
        question = paradigm.write(tools.writer, path, rng, allowed)
        if question is None:
            return "unwritable"
        choices, letter = [], ""
        if task_type == "mc":
            made = tools.chooser.make(question, rng)
            if made is None:
                return "no_distractors"
            choices, letter = made
        key = sample_id(task_type, question.text, question.answers, choices)
        return _Draft(task_type, question, choices, letter, key)

    def _check_answer_relations(self, graph: KnowledgeGraph) -> None:
        known = graph.relations()
        unknown = sorted(set(self.config.answer_relations) - set(known))
        if unknown:
            raise ConfigError(
                f"{self.name}.answer_relations: {', '.join(unknown)} not among the graph's "
                f"relations ({', '.join(known)})"
            )

    def _answers_from_allowed_relation(self, path: Path) -> bool:
        allowed = self.config.answer_relations
        return not allowed or path.hops[-1].relation in allowed

    def _lengths(self, task_type: str, min_hops: int) -> tuple[int, int]:
        """Allowed path lengths: reading 1, multihop at least 2, mc 1 up to the maximum."""
        paths = self.config.paths
        if task_type == "reading":
            return max(1, min_hops), 1
        if task_type == "mc":
            return max(1, min_hops), paths.max_hops
        return max(paths.min_hops, min_hops, 2), paths.max_hops

    def _sample(self, draft: _Draft, rewritten: str | None) -> TaskSample:
        q = draft.question
        mc = draft.task_type == "mc"
        answers = [draft.letter] if mc else q.answers
        meta = {
            "paradigm": q.paradigm,
            "hops": str(len(q.path)),
            "answer_position": str(q.answer_position),
            "strategy": q.path.strategy,
            "rewritten": "yes" if rewritten else "no",
        }
        if rewritten:
            meta["template_question"] = q.text
        if mc:
            meta["answer_text"] = q.answers[0]
        return TaskSample(
            id=draft.key,
            task_type=draft.task_type,
            question=rewritten or q.text,
            answers=answers,
            answer_kind="choice" if mc else "text",
            instruction="" if mc else self.config.instruction,
            choices=draft.choices,
            provenance=Provenance(
                generator=self.name, source_documents=q.docs, reasoning_chain=q.chain
            ),
            difficulty=float(len(q.path)),
            meta=meta,
        )
