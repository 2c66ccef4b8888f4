"""Middle truncation against the tiny model's real tokenizer: budgets hold exactly, ends survive."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.prompts import build_messages
from qwenlong.evals.truncation import (
    HFTokenCounter,
    TokenCounter,
    as_token_counter,
    fit_context,
    truncate_middle,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def long_text() -> str:
    return "\n\n".join(synthetic_corpus(seed=7, n_paragraphs=400))


class RecordingTokenizer:
    """Delegates to a real tokenizer and records the length of every text it encodes."""

    def __init__(self, inner, is_fast: bool = True, chat_template: str | None = "inherit"):
        self._inner = inner
        self.is_fast = is_fast and inner.is_fast
        self.chat_template = inner.chat_template if chat_template == "inherit" else chat_template
        self.encoded_lengths: list[int] = []

    def __call__(self, text, **kwargs):
        self.encoded_lengths.append(len(text))
        return self._inner(text, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _prompt_tokens(tokenizer, sample: TaskSample, context: str) -> int:
    """Count independently of the module: the template tokenized by transformers itself."""
    ids = tokenizer.apply_chat_template(
        build_messages(sample, context=context), tokenize=True, add_generation_prompt=True
    )["input_ids"]
    return len(ids)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _assert_head_and_tail_of(original: str, cut: str, min_each: int) -> None:
    """`cut` is a prefix of `original` followed by a suffix of it, each at least `min_each`."""
    head = _common_prefix(original, cut)
    tail = _common_prefix(original[::-1], cut[::-1])
    assert head >= min_each and tail >= min_each
    assert head + tail >= len(cut)


def test_counter_counts_like_the_tokenizer(tokenizer):
    counter = HFTokenCounter(tokenizer)
    text = "Therefore, the answer is 1,234."
    expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert counter.count_tokens(text) == counter(text) == expected
    assert isinstance(counter, TokenCounter)
    assert as_token_counter(counter) is counter


def test_message_count_matches_transformers_chat_template(tokenizer):
    sample = TaskSample(id="a", task_type="reading", question="Who?", answers=["x"], context="doc")
    counter = HFTokenCounter(tokenizer)
    assert counter.count_messages(build_messages(sample)) == _prompt_tokens(
        tokenizer, sample, "doc"
    )


def test_truncate_middle_fits_and_keeps_both_ends(tokenizer, long_text):
    counter = HFTokenCounter(tokenizer)
    assert counter.count_tokens(long_text) > 20_000
    for budget in (1, 2, 57, 500, 1001):
        cut = truncate_middle(long_text, tokenizer, budget)
        n = counter.count_tokens(cut)
        assert budget - 3 <= n <= budget
        if budget >= 57:
            _assert_head_and_tail_of(long_text, cut, min_each=budget)  # >= 1 char per token


def test_truncate_middle_leaves_short_text_alone(tokenizer):
    text = "A short note about the old harbor."
    assert truncate_middle(text, tokenizer, 1000) == text
    assert truncate_middle(text, tokenizer, 0) == ""


def test_fit_context_fits_the_rendered_prompt_exactly(tokenizer, long_text):
    sample = TaskSample(
        id="q7",
        task_type="multihop",
        question="Which council audited the railway?",
        answers=["x"],
        context=long_text,
        instruction="Answer with a name.",
    )
    for budget in (300, 777, 2048, 4096):
        context = fit_context(sample, tokenizer, budget)
        n = _prompt_tokens(tokenizer, sample, context)
        assert budget - 3 <= n <= budget
        _assert_head_and_tail_of(long_text, context, min_each=budget // 4)


def test_fit_context_keeps_a_context_that_fits(tokenizer):
    sample = TaskSample(id="s", task_type="reading", question="Q?", answers=["a"], context="short")
    assert fit_context(sample, tokenizer, 10_000) == "short"


def test_fit_context_cuts_joined_documents(tokenizer, long_text):
    half = len(long_text) // 2
    sample = TaskSample(
        id="d",
        task_type="multihop",
        question="Q?",
        answers=["a"],
        documents=[long_text[:half], long_text[half:]],
    )
    context = fit_context(sample, tokenizer, 1000)
    assert context.startswith("Document 1:\n")
    assert context.endswith(long_text[-200:])
    assert _prompt_tokens(tokenizer, sample, context) <= 1000


def test_long_text_is_tokenized_once(tokenizer, long_text):
    recording = RecordingTokenizer(tokenizer)
    sample = TaskSample(
        id="s", task_type="reading", question="Q?", answers=["a"], context=long_text
    )
    fit_context(sample, recording, 1000)
    full = [n for n in recording.encoded_lengths if n >= len(long_text)]
    assert len(full) == 1
    others = [n for n in recording.encoded_lengths if n < len(long_text)]
    assert others and max(others) < len(long_text) // 10


def test_slow_tokenizers_fall_back_to_decoding(tokenizer, long_text):
    slow = RecordingTokenizer(tokenizer, is_fast=False)
    cut = truncate_middle(long_text, slow, 400)
    assert HFTokenCounter(tokenizer).count_tokens(cut) <= 400
    assert cut[:50] == long_text[:50] and cut[-50:] == long_text[-50:]


def test_tokenizer_without_chat_template_counts_the_plain_prompt(tokenizer, long_text):
    plain = RecordingTokenizer(tokenizer, chat_template=None)
    sample = TaskSample(
        id="s", task_type="reading", question="Q?", answers=["a"], context=long_text
    )
    context = fit_context(sample, plain, 600)
    prompt = build_messages(sample, context=context)[0]["content"]
    assert 597 <= len(tokenizer(prompt)["input_ids"]) <= 600


def test_budget_below_the_template_is_an_error(tokenizer):
    sample = TaskSample(id="tiny", task_type="reading", question="Q?", answers=["a"], context="x")
    with pytest.raises(DatasetError, match=r"sample 'tiny'.*max_input_tokens=10"):
        fit_context(sample, tokenizer, 10)
