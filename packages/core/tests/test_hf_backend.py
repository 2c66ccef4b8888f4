"""The `hf` backend: log-probs an RL policy can trust, stop rules, seeds, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from qwenlong.core.backends import BackendConfig, make_chat_model
from qwenlong.core.backends.config import HFBackendConfig
from qwenlong.core.backends.hf import HFChatModel
from qwenlong.core.backends.hf_sampling import choose_tokens, uniforms
from qwenlong.core.errors import BackendError, ConfigError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Completion, Conversation

CONVERSATIONS: list[Conversation] = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "You answer with one number."},
        {"role": "user", "content": "How many rivers cross the northern village of Bundchun?"},
    ],
    [{"role": "user", "content": "Name three festivals held in 1897, with their dates."}],
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> HFChatModel:
    """Batch size 2 so three conversations take two left-padded chunks of unequal lengths."""
    torch.set_num_threads(1)
    return HFChatModel(tiny_model_dir, batch_size=2)


def forward_logprobs(model: HFChatModel, prompt: list[int], generated: list[int], t: float):
    """log_softmax(logits / t) at the generated tokens, from one unpadded, uncached forward."""
    ids = torch.tensor([prompt + generated])
    with torch.no_grad():
        logits = model.model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits / t, dim=-1)[len(prompt) - 1 : -1]
    return logprobs.gather(-1, torch.tensor(generated)[:, None])[:, 0], logits


def prompts_of(model: HFChatModel) -> list[list[int]]:
    return [model.encode_prompt(conversation, i) for i, conversation in enumerate(CONVERSATIONS)]


@pytest.mark.parametrize(("temperature", "top_p"), [(0.7, 0.9), (1.3, 1.0), (0.0, 1.0)])
def test_logprobs_equal_a_separate_forward_pass(
    model: HFChatModel, temperature: float, top_p: float
) -> None:
    sampling = SamplingParams(
        max_new_tokens=24, temperature=temperature, top_p=top_p, n=3, seed=11, logprobs=True
    )
    outputs = model.generate(CONVERSATIONS, sampling)
    assert [len(group) for group in outputs] == [3, 3, 3]
    scale = temperature if temperature > 0 else 1.0
    for prompt, group in zip(prompts_of(model), outputs, strict=True):
        for completion in group:
            assert completion.prompt_tokens == len(prompt)
            assert len(completion.logprobs) == len(completion.token_ids) > 0
            expected, logits = forward_logprobs(model, prompt, completion.token_ids, scale)
            actual = torch.tensor(completion.logprobs)
            torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)
            # ...and the entropy of that same tempered distribution, for the RL trainer.
            full = torch.log_softmax(logits / scale, dim=-1)[len(prompt) - 1 : -1]
            entropy = -(full.exp() * full).sum(-1)
            torch.testing.assert_close(
                torch.tensor(completion.entropies), entropy, atol=1e-4, rtol=0
            )


def test_greedy_is_the_argmax_continuation(model: HFChatModel) -> None:
    sampling = SamplingParams(max_new_tokens=16, temperature=0.0, n=2)
    outputs = model.generate(CONVERSATIONS, sampling)
    for prompt, group in zip(prompts_of(model), outputs, strict=True):
        assert group[0].token_ids == group[1].token_ids
        generated = group[0].token_ids
        _, logits = forward_logprobs(model, prompt, generated, 1.0)
        argmax = logits[len(prompt) - 1 : -1].argmax(dim=-1).tolist()
        assert argmax == generated


def test_length_finish_returns_exactly_max_new_tokens(model: HFChatModel) -> None:
    out = model.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=5, temperature=0.0))
    completion = out[0][0]
    assert completion.finish_reason == "length"
    assert len(completion.token_ids) == 5
    assert completion.logprobs is None  # not asked for


def test_eos_ends_the_turn_and_is_kept_in_token_ids(tiny_model_dir: Path) -> None:
    """Swap the output rows of <|im_end|> and the k-th greedy token: greedy then emits eos at k."""
    chat = HFChatModel(tiny_model_dir)
    greedy = SamplingParams(max_new_tokens=12, temperature=0.0, logprobs=True)
    before = chat.generate(CONVERSATIONS[:1], greedy)[0][0].token_ids
    k = next(i for i in range(1, len(before)) if before[i] not in before[:i])
    eos = chat.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        head = chat.model.lm_head.weight
        head[[eos, before[k]]] = head[[before[k], eos]]
    after = chat.generate(CONVERSATIONS[:1], greedy)[0][0]
    assert after.token_ids == [*before[:k], eos]
    assert after.finish_reason == "stop"
    assert after.text == chat.tokenizer.decode(before[:k])
    assert "<|im_end|>" not in after.text
    assert len(after.logprobs) == k + 1
    chat.close()


def test_stop_string_cuts_text_and_stops_generation(model: HFChatModel) -> None:
    greedy = SamplingParams(max_new_tokens=40, temperature=0.0)
    full = model.generate(CONVERSATIONS[1:2], greedy)[0][0]
    text = full.text
    start = next(i for i in range(len(text) // 3, len(text) - 3) if text[i : i + 3].isalpha())
    stop = text[start : start + 3]
    cut = text.index(stop)
    stopped = model.generate(
        CONVERSATIONS[1:2], SamplingParams(max_new_tokens=40, temperature=0.0, stop=("@@@", stop))
    )[0][0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == text[:cut]
    assert full.token_ids[: len(stopped.token_ids)] == stopped.token_ids
    assert len(stopped.token_ids) < len(full.token_ids)
    # the last returned token completed the stop string; one token fewer had not
    ids = stopped.token_ids
    assert stop in model.tokenizer.decode(ids)
    assert stop not in model.tokenizer.decode(ids[:-1])


def test_seed_makes_sampling_reproducible_and_batch_invariant(model: HFChatModel) -> None:
    sampling = SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.95, n=2, seed=5)
    first = model.generate(CONVERSATIONS, sampling)
    again = model.generate(CONVERSATIONS, sampling)
    alone = model.generate(CONVERSATIONS[2:], sampling)
    other_seed = model.generate(CONVERSATIONS, SamplingParams(**{**vars(sampling), "seed": 6}))

    def ids(outputs: list[list[Completion]]) -> list[list[list[int]]]:
        return [[c.token_ids for c in group] for group in outputs]

    assert ids(first) == ids(again)
    assert ids(alone)[0] == ids(first)[2]
    assert ids(other_seed) != ids(first)
    assert first[0][0].token_ids != first[0][1].token_ids  # n samples are distinct draws


def test_tiny_top_p_keeps_only_the_top_token(model: HFChatModel) -> None:
    nucleus = SamplingParams(max_new_tokens=10, temperature=0.8, top_p=1e-6, seed=3, logprobs=True)
    greedy = SamplingParams(max_new_tokens=10, temperature=0.0)
    sampled = model.generate(CONVERSATIONS[:2], nucleus)
    argmax = model.generate(CONVERSATIONS[:2], greedy)
    assert [g[0].token_ids for g in sampled] == [g[0].token_ids for g in argmax]
    # the reported log-prob is still the full T = 0.8 distribution's, not the truncated one (0.0)
    assert all(lp < -1.0 for g in sampled for lp in g[0].logprobs)


def test_choose_tokens_on_a_hand_worked_distribution() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    # top_p 0.7 keeps {0.5, 0.3} (mass before 0.3 is 0.5 < 0.7; before 0.2 is 0.8); the kept
    # mass 0.8 is split 0.5 | 0.3, so u < 0.625 draws token 0 and u >= 0.625 token 1.
    tokens, logprobs, entropy = choose_tokens(logits, 1.0, 0.7, torch.tensor([0.6, 0.65, 0.999]))
    assert tokens.tolist() == [0, 1, 1]
    assert logprobs.tolist() == pytest.approx([math.log(0.5), math.log(0.3), math.log(0.3)])
    # The entropy is the full distribution's, whatever top-p kept.
    full = -sum(p * math.log(p) for p in (0.5, 0.3, 0.2))
    assert entropy.tolist() == pytest.approx([full] * 3)
    # temperature 2 flattens to p ~ sqrt(p): [0.70711, 0.54772, 0.44721] / 1.70204
    tokens, logprobs, _ = choose_tokens(logits[:1], 2.0, 1.0, torch.tensor([0.99]))
    assert tokens.tolist() == [2]
    assert logprobs.item() == pytest.approx(math.log(math.sqrt(0.2) / 1.70204), abs=1e-4)


def test_uniform_streams_are_per_row_and_in_range() -> None:
    seeds = np.array([1, 2, 3, 2**63 + 7], dtype=np.uint64)
    u = uniforms(seeds, 4)
    assert ((u >= 0) & (u < 1)).all()
    assert uniforms(seeds[[2]], 4).item() == u[2].item()
    assert uniforms(seeds, 5).tolist() != u.tolist()
    many = uniforms(np.arange(20000, dtype=np.uint64), 0)
    assert abs(many.mean().item() - 0.5) < 0.01


def test_from_config_and_registry_give_a_chat_model(tiny_model_dir: Path) -> None:
    config = BackendConfig(model=str(tiny_model_dir), hf=HFBackendConfig(batch_size=3))
    chat = make_chat_model(config)
    assert isinstance(chat, HFChatModel) and isinstance(chat, ChatModel)
    assert chat.batch_size == 3 and chat.name == str(tiny_model_dir)
    assert chat.count_tokens("2025") == 4
    assert chat.generate([], SamplingParams()) == []
    chat.close()


def test_shared_fixture_model_serves_n_samples(tiny_chat_model: HFChatModel) -> None:
    outputs = tiny_chat_model.generate(CONVERSATIONS[:2], SamplingParams(max_new_tokens=4, n=2))
    assert [len(group) for group in outputs] == [2, 2]
    assert all(
        len(c.token_ids) <= 4 and c.finish_reason in {"stop", "length"} for g in outputs for c in g
    )


def test_generate_after_close_is_a_backend_error(tiny_model_dir: Path) -> None:
    chat = HFChatModel(tiny_model_dir)
    chat.close()
    with pytest.raises(BackendError, match="generate called after close"):
        chat.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=2))


def test_missing_model_directory_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere: no such model folder"):
        HFChatModel(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(BackendError, match=r"cannot load model from .*broken"):
        HFChatModel(tmp_path / "broken")


@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        (SamplingParams(max_new_tokens=0), "max_new_tokens must be >= 1"),
        (SamplingParams(n=0), "n must be >= 1"),
        (SamplingParams(temperature=-1.0), "temperature must be >= 0"),
        (SamplingParams(top_p=0.0), r"top_p must be in \(0, 1\]"),
        (SamplingParams(stop=("",)), "empty string"),
        (SamplingParams(max_new_tokens=131072), "exceeds the model's 131072 positions"),
    ],
)
def test_bad_requests_raise_backend_error(
    model: HFChatModel, sampling: SamplingParams, message: str
) -> None:
    with pytest.raises(BackendError, match=message):
        model.generate(CONVERSATIONS[:1], sampling)


def test_unknown_role_names_the_conversation(model: HFChatModel) -> None:
    bad = [CONVERSATIONS[0], [{"role": "tool", "content": "x"}]]
    with pytest.raises(BackendError, match="conversation 1: chat template failed"):
        model.generate(bad, SamplingParams(max_new_tokens=2))
