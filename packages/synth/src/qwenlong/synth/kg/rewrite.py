"""Optional LLM rewriting of template questions, accepted only when the answer cannot change.

Templates are correct but stiff; a model can reword them. A rewrite is accepted only if every
check below passes, otherwise the template question is kept (and the reason counted):

- `empty`: the reply holds no question (nothing left after the reasoning, or no "?");
- `length`: it is shorter than `min_length_ratio` or longer than `max_length_ratio` times the
  template (a summary drops constraints; an essay adds some);
- `anchor`: a phrase the question rests on went missing: the start entity (its name, or its
  description word for word), another named entity, a date phrase, an "earliest"/"latest".
  Without it the question asks about something else;
- `leak`: it names the answer (any surface form) or an entity the template only described;
- `relation`: for some relation on the path, none of its words survive (the label, a synonym
  from the table or its noun): the rewrite may now ask for a different relation.

The checks are lexical on purpose: they never need the model to be right, only honest text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.evals.reasoning import answer_text
from qwenlong.synth.kg.config import RewriteConfig
from qwenlong.synth.kg.graph import normalize_name
from qwenlong.synth.kg.questions import Question, contains_phrase
from qwenlong.synth.kg.relations import stem_label, surface_forms

REWRITE_PROMPT = """Rewrite the question below so it reads like natural, fluent English.

Rules:
- Keep its meaning exactly: the same entities, the same dates and date ranges, the same \
relations, the same thing asked for.
- Keep every name and every date phrase exactly as written.
- Do not add facts, hints or names, and do not answer it.
- Reply with the rewritten question only, on one line.

Question: {question}"""
"""Our wording. The model sees the question only, never the answer or the path."""

_STOPWORDS = {"of", "in", "by", "at", "for", "to", "with", "from", "on", "as", "the", "a", "an"}

log = logging.getLogger(__name__)


def _stems(text: str) -> set[str]:
    return set(stem_label(normalize_name(text)).split())


def relation_kept(relation: str, text: str) -> bool:
    """Whether some surface form of `relation` has all its content words (stemmed) in `text`."""
    words = _stems(text)
    for form in surface_forms(relation):
        content = _stems(form) - _STOPWORDS
        if content and content <= words:
            return True
    return False


def check_rewrite(question: Question, rewrite: str, config: RewriteConfig) -> str | None:
    """The first failed check's name (see the module docstring), or None when accepted."""
    if "?" not in rewrite:
        return "empty"
    ratio = len(rewrite) / max(len(question.text), 1)
    if not config.min_length_ratio <= ratio <= config.max_length_ratio:
        return "length"
    if any(not contains_phrase(rewrite, a) for a in question.anchors):
        return "anchor"
    if any(contains_phrase(rewrite, f) for f in question.forbidden):
        return "leak"
    if any(not relation_kept(r, rewrite) for r in dict.fromkeys(question.relations)):
        return "relation"
    return None


class QuestionRewriter:
    """Rewrites a batch of questions in one `generate` call and keeps only safe rewrites."""

    def __init__(
        self, model: ChatModel, config: RewriteConfig, log_fn: Callable[[str], None] | None = None
    ) -> None:
        self.model = model
        self.config = config
        self.log = log_fn or log.info
        self.stats: Counter[str] = Counter()
        """accepted, and one count per rejection reason."""

    def rewrite(self, questions: Sequence[Question]) -> list[str | None]:
        """The accepted rewrite of each question, or None where the template stays."""
        if not questions:
            return []
        sampling = SamplingParams(
            max_new_tokens=self.config.max_new_tokens, temperature=self.config.temperature
        )
        conversations = [
            [{"role": "user", "content": REWRITE_PROMPT.format(question=q.text)}] for q in questions
        ]
        replies = self.model.generate(conversations, sampling)
        if len(replies) != len(questions):
            raise BackendError(
                f"rewrite model {self.model.name!r} returned {len(replies)} replies "
                f"for {len(questions)} questions"
            )
        out: list[str | None] = []
        for question, completions in zip(questions, replies, strict=True):
            text = " ".join(answer_text(completions[0].text).split()) if completions else ""
            text = text.removeprefix("Question:").strip()
            reason = check_rewrite(question, text, self.config)
            self.stats[reason or "accepted"] += 1
            out.append(None if reason else text)
        rejected = sum(v for k, v in self.stats.items() if k != "accepted")
        self.log(f"kg rewrite: {self.stats['accepted']} accepted, {rejected} rejected so far")
        return out
