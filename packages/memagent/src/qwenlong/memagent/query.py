"""Split a user query into the core question q_core and the format instructions q_inst.

The memory is built for q_core alone (RECIPE.md section 3): a request such as "end with
'Therefore, the answer is ...'" tells the reader nothing about what to keep, and repeated at
every step it invites the model to answer early. q_inst returns in the final prompt only.

Rules cover the templates this project meets: the evals prompt's answer requests, imperative
format sentences ("Answer with a single number.", "Do not include any other text."), and
multiple-choice option blocks, which become `choices` so every step can show them. A rule never
leaves an empty question: when everything would go, the query stays whole. The optional LLM
split asks the model itself and falls back to the rules on an unusable reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.registry import Registry
from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST
from qwenlong.evals.reasoning import answer_text
from qwenlong.memagent.interfaces import QuerySplit
from qwenlong.memagent.prompts import split_messages

REQUEST_PATTERN = re.compile(r"answer is \(insert answer here\)|the answer is \(\w\)", re.I)
"""A sentence asking for the closing answer line, in the evals template's or LongBench's words."""

FORMAT_PATTERN = re.compile(
    r"""^(?:please\s+)?(?:
        (?:answer|respond|reply)\s+(?:with|in|using|only|by|as)\b
      | (?:only\s+)?(?:give|provide|output|return|write|state)\s+(?:only\s+)?
        (?:the|your|a|an)\s+(?:final\s+|short\s+|brief\s+)?(?:answer|response)\b
      | your\s+(?:final\s+)?(?:answer|response)\s+(?:should|must)\b
      | format\s+your\s+(?:answer|response)\b
      | put\s+your\s+(?:final\s+)?answer\b
      | end\s+your\s+(?:answer|response)\b
      | (?:do\s+not|don't)\s+(?:include|explain|add|output|provide|write)\b
      | keep\s+(?:your|the)\s+answer\b
      | (?:think|reason)\s+step\s+by\s+step\b
    )""",
    re.I | re.X,
)
"""Sentences that say how to answer, not what is asked. Anchored at the sentence start."""

OPTION_PATTERN = re.compile(r"^\s*\(?([A-Z])[\).:]\s+(.+?)\s*$")
"""One option line: "(A) text", "A) text", "A. text" or "A: text"."""

OPTIONS_HEADER = re.compile(r"^\s*(?:choices|options)\s*:?\s*$", re.I)
"""A line that only introduces the options ("Choices:")."""

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
"""Sentence boundaries inside a line: after . ! or ? and before a capital, quote or bracket. A
false boundary ("Dr. Smith") is harmless: its halves match no rule and are joined back."""

SplitRule = Callable[[str], tuple[str, list[str], list[str]]]
"""A rule: query text -> (text left, instruction sentences taken, options taken)."""

QUERY_RULES: Registry[SplitRule] = Registry("query split rule")
RULE_ORDER = ("answer_request", "choices", "answer_with")
"""Application order: exact template text first, then structure, then the sentence heuristics."""


@QUERY_RULES.register("answer_request")
def take_answer_requests(text: str) -> tuple[str, list[str], list[str]]:
    """The evals template's requests verbatim, and any sentence asking for the answer line."""
    taken = [request for request in (CHOICE_ANSWER_REQUEST, ANSWER_REQUEST) if request in text]
    for request in taken:
        text = text.replace(request, "")
    kept, sentences = _partition(text, lambda s: bool(REQUEST_PATTERN.search(s)))
    return kept, taken + sentences, []


@QUERY_RULES.register("choices")
def take_choices(text: str) -> tuple[str, list[str], list[str]]:
    """A block of consecutive option lines lettered A, B, C, ... (two or more), and the
    "Choices:" line just above it."""
    lines = text.split("\n")
    for start, line in enumerate(lines):
        match = OPTION_PATTERN.match(line)
        if not match or match.group(1) != "A":
            continue
        options = [match.group(2)]
        for following in lines[start + 1 :]:
            nxt = OPTION_PATTERN.match(following)
            if not nxt or nxt.group(1) != chr(ord("A") + len(options)):
                break
            options.append(nxt.group(2))
        if len(options) < 2:
            continue
        first = start - 1 if start and OPTIONS_HEADER.match(lines[start - 1]) else start
        rest = lines[:first] + lines[start + len(options) :]
        return "\n".join(rest), [], options
    return text, [], []


@QUERY_RULES.register("answer_with")
def take_format_sentences(text: str) -> tuple[str, list[str], list[str]]:
    """Imperative sentences about the answer's form ("Answer with ...", "Do not include ...").

    A sentence ending in "?" is a question and always stays.
    """
    kept, sentences = _partition(
        text, lambda s: not s.rstrip().endswith("?") and bool(FORMAT_PATTERN.match(s.strip()))
    )
    return kept, sentences, []


def split_query(query: str) -> QuerySplit:
    """Apply the rules in RULE_ORDER; an empty remainder means the query stays whole."""
    text, instructions, choices, fired = query, [], [], []
    for name in RULE_ORDER:
        text, taken, options = QUERY_RULES.get(name)(text)
        if taken or options:
            fired.append(name)
        instructions += taken
        choices += options
    question = _tidy(text)
    if not question:
        return QuerySplit(question=query.strip(), rules=("none_left",))
    return QuerySplit(question, " ".join(instructions).strip(), tuple(choices), tuple(fired))


def llm_split_queries(
    queries: Sequence[str],
    model: ChatModel,
    max_new_tokens: int,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> list[QuerySplit]:
    """Ask `model` to split each query (one batched call, greedy), with the
    memagent_query_split prompt of `prompts`.

    Options are taken by the rule first (they are structure, not wording). A reply is used
    only when its question part is non-empty and appears in the query word for word; otherwise
    that query falls back to the rules and the split records "llm_fallback".
    """
    if not queries:
        return []
    ruled = [split_query(query) for query in queries]
    bases = [take_choices(query) for query in queries]
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, n=1)
    replies = model.generate([split_messages(text, prompts) for text, _, _ in bases], sampling)
    if len(replies) != len(queries):
        raise BackendError(
            f"model {model.name!r} returned {len(replies)} replies for {len(queries)} queries"
        )
    splits = []
    for (base, _, options), reply, rules in zip(bases, replies, ruled, strict=True):
        question, instruction = _read_reply(answer_text(reply[0].text) if reply else "")
        if question and _normal(question) in _normal(base):
            splits.append(QuerySplit(question, instruction, tuple(options), ("llm",)))
        else:
            fallback = (*rules.rules, "llm_fallback")
            splits.append(replace(rules, rules=fallback))
    return splits


def _partition(text: str, is_instruction: Callable[[str], bool]) -> tuple[str, list[str]]:
    """(text without the matching sentences, the matching sentences), line structure kept."""
    kept_lines, taken = [], []
    for line in text.split("\n"):
        sentences = SENTENCE_END.split(line)
        keep = [s for s in sentences if not (s.strip() and is_instruction(s))]
        taken += [s.strip() for s in sentences if s.strip() and is_instruction(s)]
        if keep != sentences and not "".join(keep).strip():
            continue  # the whole line was instructions: drop it rather than leave a blank
        kept_lines.append(" ".join(s.strip() for s in keep) if keep != sentences else line)
    return "\n".join(kept_lines), taken


def _tidy(text: str) -> str:
    """Strip, and squeeze runs of blank lines left by removed sentences to one blank line."""
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text).strip()


def _read_reply(reply: str) -> tuple[str, str]:
    question = re.search(r"<question>(.*?)</question>", reply, re.S)
    form = re.search(r"<format>(.*?)</format>", reply, re.S)
    return (question.group(1).strip() if question else "", form.group(1).strip() if form else "")


def _normal(text: str) -> str:
    return " ".join(text.split())


class QuerySplitter(Protocol):
    """(queries, model, LLM output budget, prompts) -> one split per query, in order."""

    def __call__(
        self,
        queries: Sequence[str],
        model: ChatModel,
        max_new_tokens: int,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> list[QuerySplit]: ...


QUERY_SPLITTERS: Registry[QuerySplitter] = Registry("query split")
"""`MemAgentConfig.query_split` values."""


@QUERY_SPLITTERS.register("rules")
def rule_split_queries(
    queries: Sequence[str],
    model: ChatModel,
    max_new_tokens: int,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> list[QuerySplit]:
    """`split_query` on each query; the model is not asked."""
    return [split_query(query) for query in queries]


@QUERY_SPLITTERS.register("none")
def keep_queries_whole(
    queries: Sequence[str],
    model: ChatModel,
    max_new_tokens: int,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> list[QuerySplit]:
    """Every query is its own core question (ablation: no split)."""
    return [QuerySplit(question=query.strip()) for query in queries]


QUERY_SPLITTERS.add("llm", llm_split_queries)
