"""The hf decode batch: a request's output does not depend on who it shares the batch with."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qwenlong.core.backends.hf import HFChatModel
from qwenlong.core.backends.hf_sampling import choose_tokens, uniforms
from qwenlong.core.decoding import RequestTooLong
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation


def user(text: str) -> Conversation:
    return [{"role": "user", "content": text}]


LONG_PROMPT = user("Name three festivals held in 1897 in the northern villages, with their dates.")
SHORT_PROMPT = user("hi")
TARGET = SamplingParams(max_new_tokens=24, temperature=1.0, top_p=0.95, n=2, seed=11, logprobs=True)
LATE = SamplingParams(max_new_tokens=12, temperature=0.8, seed=4, logprobs=True)


def run_alone(model: HFChatModel, conversation: Conversation, sampling: SamplingParams):
    batch = model.decoder()
    assert batch.admit([("x", conversation, sampling)]) == []
    results = {}
    while batch.active:
        results.update(batch.step())
    return results["x"]


def ids(completions: list[Completion]) -> list[list[int]]:
    return [c.token_ids for c in completions]


def test_seeded_requests_give_the_same_tokens_alone_and_in_a_mixed_batch(
    tiny_chat_model: HFChatModel,
) -> None:
    """A joins a batch already decoding (its longer prompt pads the running cache), D joins
    later with a short prompt (padded to the running width), after C, whose prompt was the
    longest, has left and the unused leading columns were cropped. Other requests carry
    other seeds, temperatures, top-p, n and lengths."""
    model = tiny_chat_model
    alone_a = run_alone(model, LONG_PROMPT, TARGET)
    alone_d = run_alone(model, SHORT_PROMPT, LATE)

    batch = model.decoder()
    first = [
        ("B", user("a short one"), SamplingParams(max_new_tokens=30, temperature=0.7, seed=5)),
        ("C", user("the longest prompt of the first pair " * 3), SamplingParams(4, 0.0)),
    ]
    assert batch.admit(first) == []
    results: dict[str, list[Completion]] = {}
    for _ in range(3):
        results.update(batch.step())
    others = SamplingParams(max_new_tokens=20, temperature=1.2, top_p=0.8, n=3, seed=99)
    assert batch.admit([("A", LONG_PROMPT, TARGET), ("E", user("e"), others)]) == []
    for _ in range(5):
        results.update(batch.step())
    assert "C" in results  # C left, so the batch's leading columns were cropped
    assert batch.admit([("D", SHORT_PROMPT, LATE)]) == []
    while batch.active:
        results.update(batch.step())

    assert ids(results["A"]) == ids(alone_a)
    assert ids(results["D"]) == ids(alone_d)
    for mixed, alone in [(results["A"], alone_a), (results["D"], alone_d)]:
        for m, a in zip(mixed, alone, strict=True):
            assert m.logprobs == pytest.approx(a.logprobs, abs=1e-4)
            assert (m.text, m.finish_reason, m.prompt_tokens) == (
                a.text,
                a.finish_reason,
                a.prompt_tokens,
            )
    assert len(results["E"]) == 3 and len(results["A"]) == 2


def test_generate_matches_the_decoder_for_the_same_seed(tiny_chat_model: HFChatModel) -> None:
    generated = tiny_chat_model.generate([SHORT_PROMPT, LONG_PROMPT], TARGET)
    assert ids(generated[1]) == ids(run_alone(tiny_chat_model, LONG_PROMPT, TARGET))


def test_too_long_and_invalid_requests_are_refused_one_by_one(
    tiny_chat_model: HFChatModel,
) -> None:
    positions = tiny_chat_model.max_positions
    assert positions is not None
    batch = tiny_chat_model.decoder()
    refused = batch.admit(
        [
            ("long", SHORT_PROMPT, SamplingParams(max_new_tokens=positions)),
            ("n0", SHORT_PROMPT, SamplingParams(max_new_tokens=2, n=0)),
            ("ok", SHORT_PROMPT, SamplingParams(max_new_tokens=2, temperature=0.0)),
        ]
    )
    assert [key for key, _ in refused] == ["long", "n0"]
    assert isinstance(refused[0][1], RequestTooLong)
    assert f"exceeds the model's {positions} positions" in str(refused[0][1])
    assert batch.active == 1
    with pytest.raises(RequestTooLong):
        tiny_chat_model.generate([SHORT_PROMPT], SamplingParams(max_new_tokens=positions))


def test_per_row_settings_choose_like_a_batch_of_one() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]] * 3))
    u = torch.tensor([0.6, 0.65, 0.99])
    # row 0 greedy, row 1 top-p 0.7 (keeps {0.5, 0.3}), row 2 temperature 2
    tokens, logprobs, _ = choose_tokens(
        logits, torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 0.7, 1.0]), u
    )
    assert tokens.tolist() == [0, 1, 2]
    assert logprobs[0].item() == pytest.approx(math.log(0.5))
    for row, (t, p) in enumerate([(0.0, 1.0), (1.0, 0.7), (2.0, 1.0)]):
        alone, alone_lp, _ = choose_tokens(logits[row : row + 1], t, p, u[row : row + 1])
        assert alone.item() == tokens[row].item()
        assert alone_lp.item() == logprobs[row].item()


def test_uniform_streams_take_a_position_per_row() -> None:
    seeds = np.array([1, 2, 3], dtype=np.uint64)
    per_row = uniforms(seeds, np.array([0, 5, 9], dtype=np.uint64))
    assert per_row[1].item() == uniforms(seeds[1:2], 5).item()
    assert per_row[2].item() == uniforms(seeds[2:3], 9).item()
