"""The `vllm` backend: lazy import and its message on CPU, output conversion with a stand-in
engine, and (on a GPU machine) the tiny model's log-probs against a torch forward pass."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from qwenlong.core.backends import BackendConfig, make_chat_model
from qwenlong.core.backends.config import VLLMBackendConfig
from qwenlong.core.backends.vllm import (
    MISSING_VLLM,
    VLLMChatModel,
    engine_arguments,
    sampling_arguments,
)
from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams


def test_missing_vllm_is_one_actionable_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail even if installed
    with pytest.raises(BackendError) as caught:
        make_chat_model(BackendConfig(backend="vllm", model="/models/any"))
    assert str(caught.value) == (
        "backend error: vllm is not installed: it needs a CUDA machine; "
        "install the 'gpu' extra (uv sync --extra gpu)"
    )
    assert MISSING_VLLM in str(caught.value)


def test_importing_the_backends_does_not_import_vllm() -> None:
    code = (
        "import sys, qwenlong.core.backends, qwenlong.core.backends.vllm; "
        "print('vllm' in sys.modules, 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# ---- conversion, with a stand-in for vllm.LLM ------------------------------------------------


@dataclass
class FakeLLM:
    """Answers `chat` with canned vLLM-shaped outputs and records what it was asked."""

    outputs: list[Any]
    calls: list[tuple[Any, Any]] = field(default_factory=list)
    error: Exception | None = None

    def chat(self, messages: Any, sampling_params: Any, use_tqdm: bool) -> list[Any]:
        assert use_tqdm is False
        self.calls.append((messages, sampling_params))
        if self.error is not None:
            raise self.error
        return self.outputs


def sample(index: int, text: str, token_ids: list[int], chosen: list[float], finish="stop"):
    """A vLLM CompletionOutput: per position, a {token id: Logprob} map holding the sampled token
    and a distractor (as logprobs=1 would give), so the test sees the right one is picked."""
    logprobs = [
        {token: SimpleNamespace(logprob=lp), token + 1000: SimpleNamespace(logprob=-99.0)}
        for token, lp in zip(token_ids, chosen, strict=True)
    ]
    return SimpleNamespace(
        index=index, text=text, token_ids=tuple(token_ids), logprobs=logprobs, finish_reason=finish
    )


def request(*samples: Any, prompt_len: int = 4) -> Any:
    return SimpleNamespace(prompt_token_ids=list(range(prompt_len)), outputs=list(samples))


def test_engine_and_sampling_arguments() -> None:
    config = BackendConfig(
        backend="vllm",
        model="/m",
        vllm=VLLMBackendConfig(tensor_parallel_size=2, max_model_len=4096, dtype="bfloat16"),
    )
    assert engine_arguments(config) == {
        "model": "/m",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.85,
        "max_model_len": 4096,
        "dtype": "bfloat16",
        "enable_prefix_caching": True,
    }
    sampled = SamplingParams(
        max_new_tokens=9, temperature=0.6, top_p=0.9, n=4, stop=("x",), seed=2, logprobs=True
    )
    assert sampling_arguments(sampled) == {
        "n": 4,
        "temperature": 0.6,
        "top_p": 0.9,
        "max_tokens": 9,
        "stop": ["x"],
        "seed": 2,
        "logprobs": 0,
    }
    greedy = sampling_arguments(SamplingParams(temperature=0.0, top_p=0.5, n=3))
    assert (greedy["n"], greedy["top_p"], greedy["stop"], greedy["logprobs"]) == (
        1,
        1.0,
        None,
        None,
    )


def test_generate_converts_outputs_in_order() -> None:
    llm = FakeLLM(
        [
            request(sample(1, "b", [7, 8], [-0.5, -0.25], "length"), sample(0, "a", [5], [-1.5])),
            request(sample(0, "c", [9], [-0.125]), sample(1, "d", [3], [-2.0]), prompt_len=6),
        ]
    )
    model = VLLMChatModel(llm, "m", dict)
    conversations = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
    sampling = SamplingParams(n=2, temperature=1.0, logprobs=True)
    first, second = model.generate(conversations, sampling)
    assert [(c.text, c.token_ids, c.logprobs, c.finish_reason) for c in first] == [
        ("a", [5], [-1.5], "stop"),
        ("b", [7, 8], [-0.5, -0.25], "length"),
    ]
    assert [c.text for c in second] == ["c", "d"] and second[0].prompt_tokens == 6
    messages, params = llm.calls[0]
    assert messages == conversations and params == sampling_arguments(sampling)


def test_greedy_n_repeats_one_sample_as_independent_copies() -> None:
    llm = FakeLLM([request(sample(0, "g", [4, 2], [-0.1, -0.2]))])
    model = VLLMChatModel(llm, "m", dict)
    [group] = model.generate(
        [[{"role": "user", "content": "q"}]], SamplingParams(temperature=0.0, n=3)
    )
    assert [c.text for c in group] == ["g", "g", "g"] and group[0].logprobs is None
    group[0].token_ids.append(99)
    assert group[1].token_ids == [4, 2]
    assert llm.calls[0][1]["n"] == 1


def test_engine_errors_become_backend_errors() -> None:
    llm = FakeLLM(
        [],
        error=ValueError(
            "The decoder prompt (length 9000) is longer than\nthe maximum model length of 8192."
        ),
    )
    model = VLLMChatModel(llm, "m", dict)
    with pytest.raises(
        BackendError,
        match=r"^backend error: vllm rejected the request: The decoder prompt .* longer than the maximum",
    ):
        model.generate([[{"role": "user", "content": "q"}]], SamplingParams())
    model.close()
    with pytest.raises(BackendError, match="closed"):
        model.generate([[{"role": "user", "content": "q"}]], SamplingParams())
    assert model.generate([], SamplingParams()) == []


# ---- on a GPU --------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_tiny_model_logprobs_match_a_torch_forward(tiny_model_dir) -> None:
    """Each sampled token's log-prob from vLLM equals log_softmax of a plain transformers forward
    over prompt + completion (temperature 1, top-p 1: raw and sampling distributions coincide)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    config = BackendConfig(
        backend="vllm",
        model=str(tiny_model_dir),
        vllm=VLLMBackendConfig(
            dtype="float32",
            gpu_memory_utilization=0.2,
            max_model_len=512,
            enable_prefix_caching=False,
        ),
    )
    conversation = [{"role": "user", "content": "Name three rivers and a mountain."}]
    sampling = SamplingParams(
        max_new_tokens=24, temperature=1.0, top_p=1.0, n=2, seed=0, logprobs=True
    )
    model = make_chat_model(config)
    try:
        [group] = model.generate([conversation], sampling)
    finally:
        model.close()

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)[
        "input_ids"
    ]
    reference = (
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).cuda().eval()
    )
    for completion in group:
        assert completion.prompt_tokens == len(prompt)
        assert len(completion.logprobs) == len(completion.token_ids) > 0
        ids = torch.tensor([prompt + completion.token_ids], device="cuda")
        with torch.no_grad():
            logits = reference(ids).logits[0, len(prompt) - 1 : -1].float()
        targets = torch.tensor(completion.token_ids, device="cuda")[:, None]
        expected = logits.log_softmax(-1).gather(-1, targets)[:, 0].cpu()
        torch.testing.assert_close(torch.tensor(completion.logprobs), expected, atol=2e-3, rtol=0)
