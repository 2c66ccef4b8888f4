"""MASE: multi-agent self-evolution over document clusters (RECIPE.md section 1 C, after SPELL).

    clusters = related documents, k at a time
    for round in 1..R:
        proposals = proposer(cluster, task, form, history[cluster])   # one batched call
        keep the well-formed, new ones; shuffle MC options
        answers   = solver(documents, question) x k                   # one batched call
        verdicts  = verifier(answers, proposal's answer)              # rule, then judge
        validated = pass rate >= min, above chance, <= max
        history[cluster] += validated; yield them as samples

Difficulty signal: each sample carries the round it was validated in (later rounds are pushed
to harder, different questions) and the solver's pass rate over its k answers, which becomes
`difficulty` (the same quantity verification later measures with a reference model).

A MASE answer rests on a model, not on a rule, so there is no template fallback: without an
LLM the generator yields nothing and reports `mode = "skipped (no LLM)"`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.interfaces import Judge
from qwenlong.evals.judge import LLMJudge
from qwenlong.evals.normalize import normalize_answer
from qwenlong.synth.interfaces import Corpus, GenerationContext
from qwenlong.synth.mase.agents import (
    FORMS,
    InvalidProposal,
    Proposal,
    Proposer,
    Slot,
    Solver,
    Verdict,
    Verifier,
)
from qwenlong.synth.mase.clusters import build_clusters
from qwenlong.synth.mase.config import MaseConfig
from qwenlong.synth.mase.history import HistoryBuffer
from qwenlong.synth.mase.prompts import TASKS

SKIPPED = "skipped (no LLM)"
SEED_RANGE = 2**31
"""Sampling seeds are drawn from the generation rng in [0, SEED_RANGE)."""


@dataclass
class MaseStats:
    """What happened to every proposal, for the synthesis report."""

    clusters: int = 0
    proposals: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    """Malformed proposer replies by reason (no_json, bad_choices, answer_too_long, ...)."""
    duplicates: int = 0
    """Well-formed proposals repeating a question already accepted or proposed this round."""
    solved: int = 0
    """Proposals sent to the solver."""
    too_hard: int = 0
    """Pass rate below `min_pass_rate` or not above chance: unanswerable or wrong answer."""
    too_easy: int = 0
    """Pass rate above `max_pass_rate`."""
    validated: int = 0
    judged: int = 0
    """Solver answers accepted by the judge after the rule said no."""
    validated_per_round: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "clusters": self.clusters,
            "proposals": self.proposals,
            "invalid": dict(sorted(self.invalid.items())),
            "duplicates": self.duplicates,
            "solved": self.solved,
            "too_hard": self.too_hard,
            "too_easy": self.too_easy,
            "validated": self.validated,
            "judged": self.judged,
            "validated_per_round": list(self.validated_per_round),
        }


class MaseGenerator:
    """`Generator` "mase": proposer / solver / verifier rounds with a per-cluster history.

    `judge` is asked where the rule metric rejects a short answer (e.g. an `LLMJudge` over a
    served judge model). `mode` and `stats` describe the last run once `generate` has been
    consumed: "llm" or "llm + judge", or "skipped (no LLM)".
    """

    name = "mase"

    def __init__(self, config: MaseConfig, judge: Judge | None = None) -> None:
        self.config = config
        self.judge = judge
        self.tasks = [TASKS.get(name) for name in config.tasks]
        self.forms = [FORMS.get(name) for name in config.forms]
        self.mode = "not run"
        self.stats = MaseStats()

    def generate(self, corpus: Corpus, ctx: GenerationContext) -> Iterator[TaskSample]:
        """Validated samples, round by round; deterministic for `ctx.rng` and a seeded backend."""
        config = self.config
        self.stats = MaseStats()
        if ctx.llm is None:
            self.mode = SKIPPED
            ctx.log(f"{self.name}: {SKIPPED}")
            return
        judge = self.judge
        if judge is None and config.judge_with_generator_llm:
            judge = LLMJudge(ctx.llm)
        self.mode = "llm + judge" if judge is not None else "llm"
        clusters = build_clusters(corpus.documents, corpus.tokens, config.clusters, ctx.rng)
        self.stats.clusters = len(clusters)
        slots = [Slot(c, t, f) for c in clusters for t in self.tasks for f in self.forms]
        history = HistoryBuffer(config.history_size)
        proposer = Proposer(ctx.llm, config.max_answer_words)
        solver, verifier = Solver(ctx.llm), Verifier(judge)
        for round_index in range(1, config.rounds + 1):
            self.stats.validated_per_round.append(0)
            if not slots:
                continue
            sampling = config.proposer.to_params(
                config.proposals_per_round, ctx.rng.randrange(SEED_RANGE)
            )
            histories = [history.items(slot.cluster.id) for slot in slots]
            proposed = proposer.propose(slots, histories, round_index, sampling)
            candidates = self._screen(proposed, history, ctx)
            if not candidates:
                ctx.log(f"{self.name} round {round_index}: no well-formed new proposal")
                continue
            sampling = config.solver.to_params(config.solver_samples, ctx.rng.randrange(SEED_RANGE))
            outputs = solver.solve(candidates, sampling)
            verdicts = verifier.verify(candidates, outputs)
            self.stats.solved += len(candidates)
            for proposal, verdict in zip(candidates, verdicts, strict=True):
                if not self._accept(proposal, verdict):
                    continue
                history.add(proposal.slot.cluster.id, proposal.history_item())
                self.stats.validated += 1
                self.stats.validated_per_round[-1] += 1
                self.stats.judged += verdict.judged
                yield self.to_sample(proposal, verdict)
                if config.max_samples is not None and self.stats.validated >= config.max_samples:
                    return
            ctx.log(
                f"{self.name} round {round_index}: {len(candidates)} solved, "
                f"{self.stats.validated_per_round[-1]} validated"
            )

    def _screen(
        self,
        proposed: list[list[Proposal | InvalidProposal]],
        history: HistoryBuffer,
        ctx: GenerationContext,
    ) -> list[Proposal]:
        """Well-formed proposals whose question is new for their cluster, options shuffled."""
        kept: list[Proposal] = []
        this_round: set[tuple[str, str]] = set()
        for replies in proposed:
            for item in replies:
                self.stats.proposals += 1
                if isinstance(item, InvalidProposal):
                    self.stats.invalid[item.reason] += 1
                    continue
                cluster_id = item.slot.cluster.id
                key = (cluster_id, normalize_answer(item.question))
                if key in this_round or history.has_question(cluster_id, item.question):
                    self.stats.duplicates += 1
                    continue
                this_round.add(key)
                kept.append(item.shuffled(ctx.rng) if self.config.shuffle_choices else item)
        return kept

    def _accept(self, proposal: Proposal, verdict: Verdict) -> bool:
        """Pass rate within [min_pass_rate, max_pass_rate] and above the form's chance rate."""
        rate = verdict.pass_rate
        if rate > self.config.max_pass_rate:
            self.stats.too_easy += 1
            return False
        if rate < self.config.min_pass_rate or rate <= proposal.slot.form.chance_rate:
            self.stats.too_hard += 1
            return False
        return True

    def to_sample(self, proposal: Proposal, verdict: Verdict) -> TaskSample:
        """The candidate sample: no context yet, the cluster as its source documents."""
        slot = proposal.slot
        doc_ids = slot.cluster.doc_ids
        key = [self.name, doc_ids, slot.task.name, slot.form.name, proposal.question]
        key += [proposal.answer, list(proposal.choices)]
        digest = hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()
        return TaskSample(
            id=f"{self.name}-{digest[:16]}",
            task_type=slot.form.task_type,
            question=proposal.question,
            answers=[proposal.answer],
            answer_kind=slot.form.answer_kind,
            choices=list(proposal.choices),
            provenance=Provenance(
                generator=self.name,
                source_documents=doc_ids,
                reasoning_chain=[proposal.evidence] if proposal.evidence else [],
            ),
            difficulty=verdict.pass_rate,
            meta={
                "mase_task": slot.task.name,
                "mase_form": slot.form.name,
                "round": str(proposal.round),
                "pass_rate": f"{verdict.pass_rate:.4g}",
                "solver_samples": str(verdict.total),
                "solver_correct": str(verdict.correct),
                "solver_answers": json.dumps(verdict.extracted, ensure_ascii=False),
                "cluster": slot.cluster.id,
            },
        )
