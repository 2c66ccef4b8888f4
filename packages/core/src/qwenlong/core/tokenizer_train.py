"""A Qwen-style byte-level BPE tokenizer trained locally, and the text to train it on.

The tiny model (`qwenlong.core.tiny_model`) needs a tokenizer that behaves like Qwen3's where
it matters to the rest of the project: every string is encodable (byte-level, no unknown
token), digits are split one per token, the chat markers `<|im_start|>` / `<|im_end|>` and the
reasoning markers `<think>` / `</think>` are single tokens, and a chat template renders
system/user/assistant turns. Training runs offline on given text files, or on a small
deterministic English-like corpus generated here from a seed, so the whole model directory
can be built on a laptop without downloading anything.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_START = "<think>"
THINK_END = "</think>"

CONTROL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
"""Special tokens: removed when decoding with `skip_special_tokens`. `<|endoftext|>` pads,
`<|im_end|>` ends an assistant turn (the chat eos), as in Qwen3."""
REASONING_TOKENS = (THINK_START, THINK_END)
"""Single tokens that stay in decoded text (as in Qwen3), so answer extraction can split the
reasoning from the answer at `</think>`."""

# One alternative per kind of piece; the BPE merges never cross these boundaries.
PRETOKENIZE_PATTERN = "|".join(
    (
        r"'(?i:s|t|d|m|re|ve|ll)",  # English contractions stay one piece: it's, we'll
        r"[^\r\n\p{L}\p{N}]?\p{L}+",  # a word with its leading space or punctuation mark
        r"\p{N}",  # each digit alone, so numbers tokenize digit by digit (as in Qwen)
        r" ?[^\s\p{L}\p{N}]+[\r\n]*",  # a run of punctuation, with the newlines after it
        r"\s*[\r\n]+",  # line breaks, with the indentation before them
        r"\s+(?!\S)",  # spaces before spaces: the last one joins the next word
        r"\s+",
    )
)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('chat template: unknown role ' ~ message['role']) }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' ~ message['role'] ~ '\\n' ~ message['content'] ~ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
"""ChatML as Qwen uses it: each turn is `<|im_start|>role\\ncontent<|im_end|>\\n`, and the
generation prompt opens an assistant turn. Unlike Qwen3-Thinking, the prompt does not force an
opening `<think>`: a randomly initialised model has no reasoning to open."""


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE tokenizer of exactly `vocab_size` ids at most.

    The trainer fills `vocab_size - 5` ids with the 256 byte symbols and learned merges; the
    five chat/reasoning tokens take the last ids, as Qwen places its added tokens after the
    learned vocabulary. A corpus too small to learn that many merges gives a smaller
    vocabulary, never a larger one. Training is deterministic for the same texts.
    """
    n_added = len(CONTROL_TOKENS) + len(REASONING_TOKENS)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - n_added,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS]
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in REASONING_TOKENS])
    return tokenizer


# --- a deterministic English-like corpus -------------------------------------------------

_ONSETS = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r")
_ONSETS += ("s", "sh", "st", "t", "th", "tr", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "ie", "oo")
_CODAS = ("", "", "n", "r", "l", "s", "th", "nd", "rt", "ck", "m", "x", "ng")

_FIRST_NAMES = (
    "Alice", "Bruno", "Chen", "Dara", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Kavya", "Liam", "Mei", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
_NOUNS = (
    "report", "river", "company", "village", "engine", "library", "market", "treaty",
    "garden", "harbor", "ledger", "museum", "station", "festival", "bridge", "council",
    "orchard", "factory", "journal", "census", "railway", "school", "island", "archive",
)  # fmt: skip
_VERBS = (
    "founded", "visited", "described", "measured", "sold", "built", "reviewed", "moved",
    "painted", "repaired", "audited", "published", "recorded", "closed", "opened", "mapped",
)  # fmt: skip
_ADJECTIVES = (
    "old", "northern", "quiet", "annual", "small", "famous", "central", "private",
    "wooden", "coastal", "modern", "remote", "public", "local", "early", "final",
)  # fmt: skip
_LINKS = ("However,", "Later,", "In fact,", "Meanwhile,", "As a result,", "Still,", "Then")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


def _invented_word(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up word: many distinct words give BPE enough merges to learn."""
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
    )


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {_invented_word(rng, rng.randint(1, 3)).capitalize()}"


def _place(rng: random.Random) -> str:
    return _invented_word(rng, rng.randint(2, 3)).capitalize()


def _number(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return str(rng.randint(2, 99))
    if kind == 1:
        return f"{rng.randint(1000, 999999):,}"
    if kind == 2:
        return f"{rng.uniform(0, 100):.{rng.randint(1, 3)}f}"
    if kind == 3:
        return f"{rng.randint(1, 99)}%"
    if kind == 4:
        return f"${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"
    return str(rng.randint(1850, 2030))


def _sentence(rng: random.Random) -> str:
    """One sentence from a handful of shapes: statements, dates, quotes, questions, lists."""
    a, n, v = rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_VERBS)
    shape = rng.randrange(8)
    if shape == 0:
        return f"{_name(rng)} {v} the {a} {n} in {_place(rng)}."
    if shape == 1:
        day, month, year = rng.randint(1, 28), rng.choice(_MONTHS), rng.randint(1850, 2030)
        return f"On {month} {day}, {year}, the {n} of {_place(rng)} was {v}."
    if shape == 2:
        return f'"The {n} is {a}," said {_name(rng)}, "and it cost {_number(rng)}."'
    if shape == 3:
        return f"How many {n}s did {_name(rng)} count? The answer is {_number(rng)}."
    if shape == 4:
        items = ", ".join(f"{_number(rng)} {rng.choice(_NOUNS)}s" for _ in range(3))
        return f"The {a} {n} lists {items}."
    if shape == 5:
        return f"{rng.choice(_LINKS)} the {n} grew by {_number(rng)} after it was {v}."
    if shape == 6:
        return f"I think it's the {n}; we'll check what {_name(rng)} {v} there."
    return f"Therefore, the answer is {_place(rng)} ({_number(rng)})."


def synthetic_corpus(seed: int, n_paragraphs: int = 1500) -> Iterator[str]:
    """Yield `n_paragraphs` English-like paragraphs, the same ones for the same seed.

    Paragraphs mix names, invented places, numbers in several formats, dates, quotes and
    punctuation, with headings, bullet lists and blank lines between them: enough variety for
    the tokenizer to learn words, digits, whitespace and punctuation pieces. Text is ours,
    generated from word lists and random syllables; it means nothing.
    """
    rng = random.Random(seed)
    for i in range(n_paragraphs):
        sentences = [_sentence(rng) for _ in range(rng.randint(2, 6))]
        kind = i % 6
        if kind == 0:
            yield f"## {_place(rng)} {rng.choice(_NOUNS).capitalize()}\n\n" + " ".join(sentences)
        elif kind == 1:
            yield "\n".join(f"- {s}" for s in sentences)
        elif kind == 2:
            yield "\n".join(f"{_name(rng)}: {s}" for s in sentences)
        elif kind == 3:
            roles = ("system", "user", "assistant")
            yield "\n".join(f"{roles[j % 3]}: {s}" for j, s in enumerate(sentences))
        else:
            yield " ".join(sentences) + "\n"
