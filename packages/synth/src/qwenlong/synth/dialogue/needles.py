"""One needle conversation: near-identical requests hidden among distractors, fitted to a length.

Build order, and why:

1. Pick the needle (a writing kind and a topic) and write its `n` answers first: they are fixed
   by the question, so the room left for distractors is known before filling starts.
2. Fill with distractor turns drawn from a small set of (kind, topic) pairs, a third sharing the
   needle's topic and a third its kind, so near misses ("a story about tapirs", "a poem about
   otters") repeat as often as the needle does. Each turn's cost is counted once, in the target
   tokenizer, on its rendered text; the running sum plus one separator per turn estimates the
   total without re-tokenizing a growing 128K-token string at every step. A turn that would
   overshoot the window is discarded; after several misses the fitter asks for the shortest
   writings, and if even those do not fit it takes a turn back out and tries again.
3. Place the needles at uniformly random turn positions: their order, not their place, defines
   which one is "the 2nd".
4. Render exactly as the evals MRCR loader does (`render_conversation`), count the whole context
   once, and correct the rare estimate error by removing or inserting one distractor at a time.

The answer is the random prefix followed by the k-th needle's assistant message, verbatim: what
the `mrcr` metric compares after checking the prefix.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from qwenlong.core.errors import ConfigError
from qwenlong.evals.benchmarks.mrcr import render_conversation
from qwenlong.synth.dialogue.content import (
    SPEAKER_NAMES,
    TOPICS,
    WRITING_KINDS,
    WritingKind,
    needle_phrase,
    write_answer,
    write_request,
)

QUESTION_TEMPLATE = (
    "Prepend {prefix} to the {ordinal} (1 indexed) {phrase}. Reply with nothing else: the "
    "string {prefix}, then that {noun} exactly as it was written."
)
"""The final user request; "{noun} about {topic}" is the phrase every needle request contains."""

TURN_SEPARATOR = "\n\n"
"""What `render_conversation` puts between messages; counted once per added turn."""

PREFIX_ALPHABET = string.ascii_letters + string.digits
"""Characters of the random prefix (MRCR's are alphanumeric)."""

NEEDLE_SHARE = 0.6
"""Largest fraction of the target the needles may take together; distractors fill the rest."""
SHORT_AFTER_MISSES = 8
"""Overshooting candidates in a row before the fitter asks for the shortest writings."""
BACKTRACK_AFTER_MISSES = 24
"""Overshooting candidates in a row (short ones included) before a turn is taken back out."""
MAX_FIT_STEPS = 100_000
"""Upper bound on fitting steps; reaching it means the window is narrower than any turn."""
MAX_CORRECTIONS = 32
"""Exact-count corrections allowed after placement (one is almost always enough)."""


@dataclass(frozen=True)
class Turn:
    """One exchange: a user request and the assistant's writing, with its rendered length."""

    kind: str
    topic: str
    request: str
    answer: str
    tokens: int
    """Tokens of the two messages rendered as the MRCR loader renders them."""

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": self.request},
            {"role": "assistant", "content": self.answer},
        ]


@dataclass(frozen=True)
class NeedleSpec:
    """What one conversation must satisfy."""

    target_tokens: int
    n_needles: int
    tolerance: float
    prefix_length: int
    speakers: int
    distractor_pairs: int
    kinds: tuple[str, ...]


@dataclass
class NeedleConversation:
    """A finished conversation, its question and its gold answer."""

    messages: list[dict[str, str]]
    """Every turn, ending with the final request (the MRCR `prompt` column)."""
    kind: str
    topic: str
    prefix: str
    ordinal: int
    """Which needle is asked for, 1-indexed."""
    needle_indices: list[int]
    """Indices in `messages` of the needle requests, in order."""
    answer: str
    """`prefix` + the requested assistant message."""
    context: str
    """`messages` without the final request, rendered as the MRCR loader renders them."""
    context_tokens: int

    @property
    def desired_msg_index(self) -> int:
        """Index in `messages` of the requested assistant message (MRCR's column)."""
        return self.needle_indices[self.ordinal - 1] + 1


def ordinal(number: int) -> str:
    """English ordinal: 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class _TurnMaker:
    """Writes turns for one conversation and counts their tokens."""

    def __init__(
        self,
        spec: NeedleSpec,
        count_tokens: Callable[[str], int],
        rng: random.Random,
        needle: tuple[str, str],
    ) -> None:
        self.count_tokens = count_tokens
        self.rng = rng
        self.kinds = list(spec.kinds)
        self.speakers = rng.sample(SPEAKER_NAMES, spec.speakers) if spec.speakers > 1 else []
        self.pairs = self._distractor_pairs(needle, spec.distractor_pairs)
        self.separator = count_tokens(TURN_SEPARATOR)

    def _distractor_pairs(self, needle: tuple[str, str], count: int) -> list[tuple[str, str]]:
        """(kind, topic) pairs other than the needle: same topic, same kind, then any."""
        kind, topic = needle
        names = self.kinds  # the configured kinds, the needle's included
        same_topic = [(k, topic) for k in names if k != kind]
        same_kind = [(kind, t) for t in TOPICS if t != topic]
        anything = [(k, t) for k in names for t in TOPICS if k != kind and t != topic]
        third = max(1, count // 3)
        chosen = self.rng.sample(same_topic, min(third, len(same_topic)))
        chosen += self.rng.sample(same_kind, min(third, len(same_kind)))
        chosen += self.rng.sample(anything, min(len(anything), max(0, count - len(chosen))))
        return chosen[:count]

    def turn(self, kind_name: str, topic: str, short: bool = False) -> Turn:
        kind = WRITING_KINDS.get(kind_name)
        speaker = self.rng.choice(self.speakers) if self.speakers else None
        request = write_request(kind, topic, self.rng, speaker)
        answer = write_answer(kind, topic, self.rng, kind.sizes[0] if short else None)
        turn_messages = [
            {"role": "user", "content": request},
            {"role": "assistant", "content": answer},
        ]
        tokens = self.count_tokens(render_conversation(turn_messages))
        return Turn(kind_name, topic, request, answer, tokens)

    def distractor(self, short: bool = False) -> Turn:
        return self.turn(*self.rng.choice(self.pairs), short=short)


def _needles(maker: _TurnMaker, kind: str, topic: str, count: int, target: int) -> list[Turn]:
    """`count` needle turns with pairwise different answers (so "the k-th" is unambiguous).

    Together they may take at most `NEEDLE_SHARE` of the target, so that short targets with
    many needles still leave room for distractors; a needle over its share is rewritten, at the
    kind's shortest size after a few tries.
    """
    share = NEEDLE_SHARE * target / count
    turns: list[Turn] = []
    seen: set[str] = set()
    for attempt in range(count * 50):
        turn = maker.turn(kind, topic, short=attempt >= count + SHORT_AFTER_MISSES)
        if turn.answer not in seen and turn.tokens <= share:
            seen.add(turn.answer)
            turns.append(turn)
            if len(turns) == count:
                return turns
    raise ConfigError(
        f"dialogue: cannot write {count} different {kind} answers about {topic} of at most "
        f"{share:.0f} tokens each; raise the target length or lower the needle count"
    )


def _fill(
    maker: _TurnMaker, fixed_tokens: int, lower: int, upper: int, spec: NeedleSpec
) -> list[Turn]:
    """Distractor turns whose estimated total with `fixed_tokens` lands in [lower, upper].

    Turns are added while the total is below the target itself, not merely below `lower`, so
    lengths centre on the target; once past `lower`, the first turn that would overshoot
    `upper` ends the filling.
    """
    distractors: list[Turn] = []
    total, misses = fixed_tokens, 0
    for _ in range(MAX_FIT_STEPS):
        if total >= spec.target_tokens:
            return distractors
        candidate = maker.distractor(short=misses >= SHORT_AFTER_MISSES)
        cost = candidate.tokens + maker.separator
        if total + cost <= upper:
            distractors.append(candidate)
            total, misses = total + cost, 0
            continue
        if total >= lower:
            return distractors
        misses += 1
        if misses >= BACKTRACK_AFTER_MISSES and distractors:
            removed = distractors.pop(maker.rng.randrange(len(distractors)))
            total, misses = total - removed.tokens - maker.separator, 0
    raise ConfigError(
        f"dialogue: cannot fit a conversation to {spec.target_tokens} tokens within "
        f"{spec.tolerance:.1%}; raise length_tolerance or the target"
    )


def _render(turns: list[Turn]) -> str:
    return render_conversation([m for turn in turns for m in turn.messages()])


def _correct(
    maker: _TurnMaker,
    turns: list[Turn],
    is_needle: list[bool],
    lower: int,
    upper: int,
    spec: NeedleSpec,
) -> tuple[str, int]:
    """Remove or insert distractors until the exact token count is in [lower, upper]."""
    target = spec.target_tokens
    for _ in range(MAX_CORRECTIONS):
        context = _render(turns)
        exact = maker.count_tokens(context)
        if lower <= exact <= upper:
            return context, exact
        if exact > upper:
            removable = [i for i, needle in enumerate(is_needle) if not needle]
            if not removable:
                break
            excess = exact - target
            drop = min(removable, key=lambda i: abs(turns[i].tokens + maker.separator - excess))
            del turns[drop], is_needle[drop]
        else:
            room = upper - exact - maker.separator
            candidate = maker.distractor()
            for attempt in range(BACKTRACK_AFTER_MISSES):
                if candidate.tokens <= room:
                    break
                candidate = maker.distractor(short=attempt >= SHORT_AFTER_MISSES)
            position = maker.rng.randrange(len(turns) + 1)
            turns.insert(position, candidate)
            is_needle.insert(position, False)
    raise ConfigError(
        f"dialogue: conversation for {target} tokens did not settle within {spec.tolerance:.1%}"
    )


def build_needle_conversation(
    spec: NeedleSpec, count_tokens: Callable[[str], int], rng: random.Random
) -> NeedleConversation:
    """A conversation of `spec.target_tokens` (within `spec.tolerance`) with its needle question."""
    kind_name = rng.choice(spec.kinds)
    topic = rng.choice(TOPICS)
    maker = _TurnMaker(spec, count_tokens, rng, (kind_name, topic))
    lower = math.ceil(spec.target_tokens * (1 - spec.tolerance))
    upper = math.floor(spec.target_tokens * (1 + spec.tolerance))
    needles = _needles(maker, kind_name, topic, spec.n_needles, spec.target_tokens)
    fixed = sum(t.tokens for t in needles) + maker.separator * (len(needles) - 1)
    distractors = _fill(maker, fixed, lower, upper, spec)
    turns, is_needle = _place(needles, distractors, rng)
    context, tokens = _correct(maker, turns, is_needle, lower, upper, spec)
    prefix = _prefix(rng, spec.prefix_length, context)
    which = rng.randint(1, spec.n_needles)
    kind: WritingKind = WRITING_KINDS.get(kind_name)
    question = QUESTION_TEMPLATE.format(
        prefix=prefix, ordinal=ordinal(which), phrase=needle_phrase(kind, topic), noun=kind.noun
    )
    messages = [m for turn in turns for m in turn.messages()]
    messages.append({"role": "user", "content": question})
    needle_indices = [2 * i for i, flag in enumerate(is_needle) if flag]
    return NeedleConversation(
        messages=messages,
        kind=kind_name,
        topic=topic,
        prefix=prefix,
        ordinal=which,
        needle_indices=needle_indices,
        answer=prefix + messages[needle_indices[which - 1] + 1]["content"],
        context=context,
        context_tokens=tokens,
    )


def _place(
    needles: list[Turn], distractors: list[Turn], rng: random.Random
) -> tuple[list[Turn], list[bool]]:
    """Needles at uniformly random turn positions, in their written order, among distractors."""
    total = len(needles) + len(distractors)
    positions = set(rng.sample(range(total), len(needles)))
    pending_needles, pending_distractors = iter(needles), iter(distractors)
    turns = [
        next(pending_needles) if i in positions else next(pending_distractors) for i in range(total)
    ]
    return turns, [i in positions for i in range(total)]


def _prefix(rng: random.Random, length: int, context: str) -> str:
    """A random alphanumeric string that does not occur in the conversation."""
    while True:
        prefix = "".join(rng.choices(PREFIX_ALPHABET, k=length))
        if prefix not in context:
            return prefix
