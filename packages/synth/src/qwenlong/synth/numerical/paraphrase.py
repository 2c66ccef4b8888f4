"""Optional LLM paraphrase of template questions, checked so the SQL answer stays right.

CorpusQA expands its templates into natural language with an LLM. A reworded question is only
useful if it still asks exactly what the SQL computes, so every paraphrase is checked and the
template wording is kept when a check fails:

- it is non-empty and at most `max_length_ratio` times as long as the template question;
- every protected term (entity names, metric names, years, threshold, aggregate, ranking
  direction and ordinal) still appears, case-insensitively, as a whole word;
- it states no number that the template question did not (a model that answers the question
  inside its paraphrase, or invents a year, is caught here).

The checks are conservative: a correct paraphrase that writes "2nd" for "second" is rejected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Conversation
from qwenlong.evals.reasoning import answer_text
from qwenlong.synth.numerical.config import ParaphraseConfig
from qwenlong.synth.numerical.questions import QuestionText

PARAPHRASE_PROMPT = """Reword the question below so it reads naturally, as a person asking about \
a set of company reports would put it. It must ask for exactly the same thing.

Rules:
- Keep each of these terms, spelled exactly as given: {terms}.
- Do not add, remove or change any number, year, name or condition.
- Do not answer the question and do not explain anything.

Question: {question}

Reply with the reworded question only, on one line."""
"""The paraphrase request (ours)."""

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> set[str]:
    """The numbers written in `text`, thousands separators removed ("1,200" -> "1200")."""
    return {match.replace(",", "") for match in _NUMBER.findall(text)}


def has_term(text: str, term: str) -> bool:
    """Whether `term` occurs in `text` as a whole word or phrase, ignoring case."""
    pattern = r"(?<!\w)" + re.escape(term.casefold()) + r"(?!\w)"
    return re.search(pattern, text.casefold()) is not None


def check_paraphrase(
    original: str, candidate: str, protected: Sequence[str], max_length_ratio: float
) -> str | None:
    """None when `candidate` passes every check, else the reason it fails (for the report)."""
    if not candidate:
        return "empty"
    if len(candidate) > max_length_ratio * len(original):
        return "too long"
    for term in protected:
        if not has_term(candidate, term):
            return "dropped a protected term"
    if numbers_in(candidate) - numbers_in(original):
        return "new number"
    return None


def clean_reply(reply: str) -> str:
    """The paraphrase in a reply: after any reasoning, first non-empty line, without a
    "Question:" label or surrounding quotes."""
    text = answer_text(reply).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:reworded\s+)?question\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"“”').strip()


@dataclass
class ParaphraseStats:
    """What the paraphraser did, for the synthesis report."""

    asked: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Reason -> count."""


class QuestionParaphraser:
    """Rewords template questions with any `ChatModel`, one batched call per group."""

    def __init__(self, llm: ChatModel, config: ParaphraseConfig, seed: int = 0) -> None:
        self.llm = llm
        self.config = config
        self.sampling = SamplingParams(
            max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=seed
        )
        self.stats = ParaphraseStats()

    def conversation(self, item: QuestionText) -> Conversation:
        terms = ", ".join(f'"{term}"' for term in item.protected)
        content = PARAPHRASE_PROMPT.format(terms=terms, question=item.question)
        return [{"role": "user", "content": content}]

    def paraphrase(self, items: Sequence[QuestionText]) -> list[str | None]:
        """The accepted paraphrase of each item, or None where the checks rejected it."""
        if not items:
            return []
        replies = self.llm.generate([self.conversation(item) for item in items], self.sampling)
        accepted: list[str | None] = []
        for item, completions in zip(items, replies, strict=True):
            self.stats.asked += 1
            candidate = clean_reply(completions[0].text) if completions else ""
            reason = check_paraphrase(
                item.question, candidate, item.protected, self.config.max_length_ratio
            )
            if reason is None:
                self.stats.accepted += 1
                accepted.append(candidate)
            else:
                self.stats.rejected[reason] += 1
                accepted.append(None)
        return accepted
