"""The hf rollout engine: after a weight sync its sampled tokens' log-probs are the policy's
(the rollout/training consistency RL relies on), and the sync is strict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.rollout.hf_engine import HFRolloutEngine
from qwenlong.rl.torch_policy import TorchPolicy, TorchPolicyConfig

torch.set_num_threads(1)

CONVERSATIONS = [
    [{"role": "user", "content": "Which key holds the value 42?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a city."}],
]
SAMPLING = SamplingParams(max_new_tokens=12, temperature=0.7, n=3, seed=7, logprobs=True)


def _trained_policy(model_dir: Path) -> TorchPolicy:
    """A policy moved away from the initial weights by one large SFT step."""
    policy = TorchPolicy(model_dir, TorchPolicyConfig(lr=1e-2, temperature=0.7))
    batch = PackedBatch.from_sequences([[11, 12, 13], [21, 22]], [[14, 15, 16], [23, 24, 25]])
    policy.sft_step(batch, int(batch.loss_mask.sum()))
    return policy


def _rollout_batch(
    engine: HFRolloutEngine,
) -> tuple[PackedBatch, torch.Tensor]:
    """Generate, pack prompt + response ids, and return the engine's log-probs aligned."""
    groups = engine.generate(CONVERSATIONS, SAMPLING)
    prompts = engine.prompt_ids(CONVERSATIONS)
    pairs = [(prompts[i], c) for i, group in enumerate(groups) for c in group]
    for prompt, completion in pairs:
        assert completion.prompt_tokens == len(prompt)
        assert completion.logprobs is not None
        assert len(completion.logprobs) == len(completion.token_ids) > 0
    batch = PackedBatch.from_sequences([p for p, _ in pairs], [c.token_ids for _, c in pairs])
    engine_logprobs = torch.zeros(batch.num_tokens)
    engine_logprobs[batch.loss_mask] = torch.tensor([lp for _, c in pairs for lp in c.logprobs])
    return batch, engine_logprobs


def test_synced_engine_logprobs_equal_the_policy_forward(tiny_model_dir: Path) -> None:
    policy = _trained_policy(tiny_model_dir)
    engine = HFRolloutEngine(tiny_model_dir)
    try:
        # Before the sync the engine samples from the initial model: the policy disagrees.
        batch, engine_logprobs = _rollout_batch(engine)
        stale = policy.forward_logprobs(batch).logprobs
        assert (stale - engine_logprobs)[batch.loss_mask].abs().max() > 1e-2

        engine.load_weights(policy.export_weights())
        batch, engine_logprobs = _rollout_batch(engine)
        synced = policy.forward_logprobs(batch).logprobs
        mask = batch.loss_mask
        torch.testing.assert_close(synced[mask], engine_logprobs[mask], atol=1e-4, rtol=0)
        # The on-policy ratio the loss would see is 1 up to float noise.
        ratio = (synced[mask] - engine_logprobs[mask]).exp()
        assert float((ratio - 1).abs().max()) < 1e-3
    finally:
        engine.close()


def test_prompt_ids_are_the_rendered_chat_prompt(tiny_model_dir: Path) -> None:
    engine = HFRolloutEngine(tiny_model_dir)
    try:
        ids = engine.prompt_ids(CONVERSATIONS[:1])[0]
        text = engine.chat.tokenizer.decode(ids)
        assert text.startswith("<|im_start|>user\nWhich key holds the value 42?<|im_end|>")
        assert text.endswith("<|im_start|>assistant\n")
    finally:
        engine.close()


def test_load_weights_rejects_foreign_tensors(tiny_model_dir: Path) -> None:
    engine = HFRolloutEngine(tiny_model_dir)
    policy = TorchPolicy(tiny_model_dir)
    weights = list(policy.export_weights())
    try:
        with pytest.raises(BackendError, match=r"rollout engine .* unknown tensor 'extra\.bias'"):
            engine.load_weights([*weights, ("extra.bias", torch.zeros(3))])
        name = weights[-1][0]
        with pytest.raises(BackendError, match=f"{name!r} has shape \\(2, 2\\)"):
            engine.load_weights([(name, torch.zeros(2, 2))])
        with pytest.raises(BackendError, match="never received"):
            engine.load_weights(weights[:-1])
    finally:
        engine.close()
    with pytest.raises(BackendError, match="after close"):
        engine.load_weights(weights)
