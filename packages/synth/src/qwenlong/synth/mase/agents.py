"""The three MASE agents: a proposer that writes (question, answer), a solver that answers from
the documents, and a verifier that checks the two agree.

Each agent makes one batched model call per round for every slot (cluster x task x form), so
an OpenAI-compatible backend runs them concurrently and the HF backend fills its batches.

The proposer's reply is untrusted text: the JSON object is searched for in code fences and in
the prose around it (after any reasoning), then validated against its answer form. Failures
are not errors: they come back as `InvalidProposal`s whose reason the generator counts.

The solver and verifier are the evals task contract, unchanged: `SinglePassSolver` renders the
candidate with `build_messages`, the answer is read with `EXTRACTORS` ("paper" for short
answers, "longbench_v2" for the letter), and correctness is `scorer_for` (cover-EM or the
LongBench-v2 letter match), with the LLM judge asked only where the rule fails on a short answer.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.core.registry import Registry
from qwenlong.evals.extractors import EXTRACTORS
from qwenlong.evals.interfaces import Judge, Score
from qwenlong.evals.judge import JudgedScorer
from qwenlong.evals.normalize import normalize_answer
from qwenlong.evals.reasoning import answer_text
from qwenlong.evals.solver import SinglePassSolver
from qwenlong.evals.task_metrics import scorer_for
from qwenlong.synth.mase.clusters import DocumentCluster
from qwenlong.synth.mase.prompts import (
    FORM_INSTRUCTIONS,
    HistoryItem,
    TaskPrompt,
    proposer_messages,
)

LETTERS = string.ascii_uppercase[:4]
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_LETTER_ANSWER = re.compile(r"^\(?([A-Da-d])(?:\)|[.:]|$)")
_OPTION_LABEL = re.compile(r"^\(?[A-Da-d][).:]\s+")


class InvalidProposal(Exception):
    """A proposer reply that cannot become a candidate; `reason` is the counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Parser = Callable[[dict[str, Any], int], tuple[str, list[str]]]
"""(proposer's JSON object, max answer words) -> (answer, choices); raises `InvalidProposal`."""


@dataclass(frozen=True)
class AnswerForm:
    """How a proposal is asked for, parsed, answered and graded: multiple choice or short."""

    name: str
    task_type: str
    """`TaskSample.task_type` of its samples."""
    answer_kind: str
    """`TaskSample.answer_kind`; `scorer_for` picks the rule metric from it."""
    extractor: str
    """EXTRACTORS name that reads the solver's answer, recorded with the sample."""
    chance_rate: float
    """Pass rate a guesser reaches; a validated proposal must beat it."""
    use_judge: bool
    """Ask the LLM judge where the rule fails (pointless for letters: B is never C)."""
    instruction: str
    """The proposer's form paragraph with its JSON schema (`prompts.FORM_INSTRUCTIONS`)."""
    parse: Parser


def _parse_short(reply: dict[str, Any], max_words: int) -> tuple[str, list[str]]:
    answer = _text(reply, "answer")
    if not normalize_answer(answer):
        raise InvalidProposal("no_answer")
    if len(answer.split()) > max_words:
        raise InvalidProposal("answer_too_long")
    return answer, []


def _parse_choice(reply: dict[str, Any], max_words: int) -> tuple[str, list[str]]:
    """Four distinct options (labels like "A." stripped); the answer as a letter or as the text
    of one option. `max_words` does not apply: options may be sentences."""
    raw = reply.get("choices")
    if not isinstance(raw, list) or len(raw) != 4 or not all(isinstance(c, str) for c in raw):
        raise InvalidProposal("bad_choices")
    choices = [_OPTION_LABEL.sub("", c.strip()).strip() for c in raw]
    normalized = [normalize_answer(c) for c in choices]
    if not all(normalized) or len(set(normalized)) != 4:
        raise InvalidProposal("bad_choices")
    answer = _text(reply, "answer")
    if not answer:
        raise InvalidProposal("no_answer")
    if normalize_answer(answer) in normalized:  # text first: "A quiet harbour" is not "A"
        return LETTERS[normalized.index(normalize_answer(answer))], choices
    letter = _LETTER_ANSWER.match(answer)
    if letter:
        return letter.group(1).upper(), choices
    raise InvalidProposal("answer_not_an_option")


FORMS: Registry[AnswerForm] = Registry("MASE answer form")
"""Answer forms by name; the config's `forms` lists names from here."""
FORMS.add(
    "mc",
    AnswerForm(
        "mc", "mc", "choice", "longbench_v2", 0.25, False, FORM_INSTRUCTIONS["mc"], _parse_choice
    ),
)
FORMS.add(
    "short",
    AnswerForm(
        "short", "reading", "text", "paper", 0.0, True, FORM_INSTRUCTIONS["short"], _parse_short
    ),
)


def _text(reply: dict[str, Any], key: str) -> str:
    value = reply.get(key)
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def find_json_object(text: str) -> dict[str, Any] | None:
    """The proposal object in a model reply: fenced blocks first, then the bare text.

    Reasoning before `</think>` is ignored. Within a block, every "{" is tried as the start of
    a JSON value; the first object with a "question" key wins, else the first object found.
    """
    answer = answer_text(text)
    blocks = [m.group(1) for m in _FENCE.finditer(answer)] + [answer]
    first: dict[str, Any] | None = None
    decoder = json.JSONDecoder()
    for block in blocks:
        for start in (m.start() for m in re.finditer(r"\{", block)):
            try:
                value, _ = decoder.raw_decode(block, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                if "question" in value:
                    return value
                first = first if first is not None else value
    return first


@dataclass(frozen=True)
class Slot:
    """One unit of proposing: a cluster, a task kind and an answer form."""

    cluster: DocumentCluster
    task: TaskPrompt
    form: AnswerForm


@dataclass(frozen=True)
class Proposal:
    """A parsed (question, answer) the solver will try."""

    slot: Slot
    round: int
    question: str
    answer: str
    """The letter for multiple choice, the short answer otherwise."""
    choices: tuple[str, ...] = ()
    evidence: str = ""

    def history_item(self) -> HistoryItem:
        """How the proposer later sees this pair: the option's text rather than its letter."""
        answer = self.choices[LETTERS.index(self.answer)] if self.choices else self.answer
        return HistoryItem(self.question, answer)

    def solver_sample(self) -> TaskSample:
        """The candidate as the solver reads it: the cluster's documents and the question."""
        cluster = self.slot.cluster
        return TaskSample(
            id=f"{cluster.id}-r{self.round}",
            task_type=self.slot.form.task_type,
            question=self.question,
            answers=[self.answer],
            answer_kind=self.slot.form.answer_kind,
            documents=[doc.text for doc in cluster.documents],
            choices=list(self.choices),
            provenance=Provenance(generator="mase", source_documents=cluster.doc_ids),
        )

    def shuffled(self, rng: random.Random) -> Proposal:
        """The same proposal with its options in a random order and the letter remapped."""
        if not self.choices:
            return self
        order = list(range(len(self.choices)))
        rng.shuffle(order)
        choices = tuple(self.choices[i] for i in order)
        return replace(
            self, choices=choices, answer=LETTERS[order.index(LETTERS.index(self.answer))]
        )


def parse_proposal(reply: str, slot: Slot, round_index: int, max_answer_words: int) -> Proposal:
    """The proposal in a proposer reply; raises `InvalidProposal` with the reason."""
    obj = find_json_object(reply)
    if obj is None:
        raise InvalidProposal("no_json")
    question = _text(obj, "question")
    if not question:
        raise InvalidProposal("no_question")
    answer, choices = slot.form.parse(obj, max_answer_words)
    return Proposal(slot, round_index, question, answer, tuple(choices), _text(obj, "evidence"))


class Proposer:
    """Writes proposals for many slots in one call, `n` per slot."""

    def __init__(self, model: ChatModel, max_answer_words: int) -> None:
        self.model = model
        self.max_answer_words = max_answer_words

    def propose(
        self,
        slots: Sequence[Slot],
        histories: Sequence[Sequence[HistoryItem]],
        round_index: int,
        sampling: SamplingParams,
    ) -> list[list[Proposal | InvalidProposal]]:
        """`sampling.n` parsed proposals (or the reason each failed) per slot, in slot order."""
        conversations = [
            proposer_messages(
                slot.cluster.documents,
                slot.task,
                slot.form.instruction,
                history,
                self.max_answer_words,
            )
            for slot, history in zip(slots, histories, strict=True)
        ]
        completions = self.model.generate(conversations, sampling) if conversations else []
        results: list[list[Proposal | InvalidProposal]] = []
        for slot, replies in zip(slots, completions, strict=True):
            parsed: list[Proposal | InvalidProposal] = []
            for completion in replies:
                try:
                    parsed.append(
                        parse_proposal(completion.text, slot, round_index, self.max_answer_words)
                    )
                except InvalidProposal as invalid:
                    parsed.append(invalid)
            results.append(parsed)
        return results


class Solver:
    """Answers candidates as an evaluated model would: the evals single-pass prompt."""

    def __init__(self, model: ChatModel) -> None:
        self.solver = SinglePassSolver(model)

    def solve(self, proposals: Sequence[Proposal], sampling: SamplingParams) -> list[list[str]]:
        """`sampling.n` output texts per proposal, from one batched call."""
        outputs = self.solver.solve([p.solver_sample() for p in proposals], sampling)
        return [[output.text for output in per_sample] for per_sample in outputs]


@dataclass
class Verdict:
    """How the solver did on one proposal."""

    correct: int
    total: int
    extracted: list[str | None] = field(default_factory=list)
    """The solver's answers as the form's extractor reads them, one per output."""
    judged: int = 0
    """Outputs the judge, not the rule, accepted."""

    @property
    def pass_rate(self) -> float:
        return self.correct / self.total if self.total else 0.0


class Verifier:
    """Semantic equivalence of solver answers and the proposer's answer (evals metrics, judge)."""

    def __init__(self, judge: Judge | None) -> None:
        self.judge = judge
        rule = _rule_by_answer_kind
        self.with_judge = JudgedScorer(rule, judge) if judge is not None else None
        self.rule_only = JudgedScorer(rule, None)

    def verify(
        self, proposals: Sequence[Proposal], outputs: Sequence[Sequence[str]]
    ) -> list[Verdict]:
        """One verdict per proposal; all judge questions of the batch go out in one call."""
        judged_pairs: list[tuple[int, TaskSample, str]] = []
        rule_pairs: list[tuple[int, TaskSample, str]] = []
        for index, (proposal, texts) in enumerate(zip(proposals, outputs, strict=True)):
            sample = proposal.solver_sample()
            use_judge = self.with_judge is not None and proposal.slot.form.use_judge
            target = judged_pairs if use_judge else rule_pairs
            target.extend((index, sample, text) for text in texts)
        scores: list[tuple[int, Score]] = []
        for pairs, scorer in ((judged_pairs, self.with_judge), (rule_pairs, self.rule_only)):
            if pairs and scorer is not None:
                batch = scorer.score_many([p[1] for p in pairs], [p[2] for p in pairs])
                scores.extend((p[0], s) for p, s in zip(pairs, batch, strict=True))
        verdicts = [Verdict(0, len(texts)) for texts in outputs]
        for index, score in scores:
            verdict = verdicts[index]
            verdict.correct += int(score.correct)
            verdict.judged += int(score.details.get("decided_by") == "judge" and score.correct)
        for proposal, texts, verdict in zip(proposals, outputs, verdicts, strict=True):
            extract = EXTRACTORS.get(proposal.slot.form.extractor)
            verdict.extracted = [extract(answer_text(text)) for text in texts]
        return verdicts


def _rule_by_answer_kind(sample: TaskSample, output: str) -> Score:
    """The evals rule metric for the sample's answer kind (cover-EM, LongBench-v2 letter)."""
    return scorer_for(sample)(sample, output)
