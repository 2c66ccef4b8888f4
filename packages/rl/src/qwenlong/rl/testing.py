"""A scripted policy and rollout engine that implement the rl protocols and nothing more.

They prove the contract: the trainer, the SFT warm start and control, held-out evaluation and
checkpoint/resume all run against them (packages/rl/tests/test_contract.py), and since they
have no method the protocols do not declare, any call past the protocols fails there. They
are small but real: the "model" is one categorical distribution over `RESPONSES`, trained by
the project's own loss and AdamW, sampled with seeded streams, and its weights travel as a
named-tensor stream like any backend's.

Importing this module registers both as the `scripted` policy and rollout backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.core.safetensors_io import write_sharded
from qwenlong.rl.config import POLICY_BACKENDS, ROLLOUT_BACKENDS, TrainConfig
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, StepStats, TokenStats, WeightStream
from qwenlong.rl.losses import compute_loss
from qwenlong.rl.rollout.colocation import Colocation

RESPONSES = (
    "Therefore, the answer is paris.",
    "Therefore, the answer is rome.",
    "Therefore, the answer is oslo.",
    "I cannot tell.",
)
"""What the scripted model can say; response token k is `RESPONSES[k]`."""

WEIGHT = "scripted.logits"
"""The one named tensor of the scripted model: logits over `RESPONSES`."""

PROMPT_IDS = [7, 8, 9]
"""Every prompt's token ids (the scripted model reads no prompt)."""


def _initial_logits(model_path: str) -> Tensor:
    """The logits saved in `model_path` by `save_pretrained`, else uniform (zeros)."""
    path = Path(model_path) / "model.safetensors"
    if path.is_file():
        with safe_open(path, framework="pt") as handle:
            if WEIGHT in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                return handle.get_tensor(WEIGHT).clone()
    return torch.zeros(len(RESPONSES))


def _read_stream(weights: WeightStream, where: str) -> Tensor:
    received = dict(weights)
    if set(received) != {WEIGHT}:
        raise BackendError(f"{where}: expected exactly {WEIGHT!r}, got {sorted(received)}")
    return received[WEIGHT].detach().clone().float()


class ScriptedPolicy:
    """`Policy`: log-softmax(logits / T) at each token (id mod the response count)."""

    weight_transports = ("stream",)

    def __init__(self, model_path: str, lr: float, temperature: float, config: TrainConfig) -> None:
        self.logits = torch.nn.Parameter(_initial_logits(model_path))
        self.optimizer = torch.optim.AdamW([self.logits], lr=lr)
        self.temperature, self.loss_config = temperature, config.loss
        self.lr = lr

    def forward_logprobs(self, batch: PackedBatch, mask: Tensor | None = None) -> TokenStats:
        with torch.no_grad():
            logprobs, entropy = self._scores(batch.input_ids, self.temperature)
        keep = torch.ones_like(batch.loss_mask) if mask is None else mask.bool()
        keep[batch.cu_seqlens[:-1]] = False
        return TokenStats(logprobs * keep, entropy * keep)

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        mask = update.token_mask.bool()
        logprobs, _ = self._scores(batch.input_ids[mask], self.temperature)
        loss, extra = compute_loss(
            logprobs,
            None if update.old_logprobs is None else update.old_logprobs[mask],
            None if update.ref_logprobs is None else update.ref_logprobs[mask],
            update.advantages[mask],
            torch.ones(int(mask.sum()), dtype=torch.bool),
            update.global_tokens,
            self.loss_config,
            seq_index=batch.sequence_index()[mask],
            global_sequences=int(torch.unique(batch.sequence_index()[mask]).numel()),
            is_weights=None if update.is_weights is None else update.is_weights[mask],
            token_weights=None if update.token_weights is None else update.token_weights[mask],
        )
        return self._step(loss, batch, int(mask.sum()), extra)

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats:
        mask = batch.loss_mask.bool()
        logprobs, _ = self._scores(batch.input_ids[mask], 1.0)
        return self._step(-logprobs.sum() / global_tokens, batch, int(mask.sum()), {})

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        yield WEIGHT, self.logits.detach().clone()

    def load_weights(self, weights: WeightStream) -> None:
        with torch.no_grad():
            self.logits.copy_(_read_stream(weights, "scripted policy"))

    def save_pretrained(self, out_dir: Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_sharded(out, self.export_weights(), 2**30)
        (out / "scripted.json").write_text(json.dumps({"responses": RESPONSES}) + "\n")
        return out

    def save_optimizer_state(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save(self.optimizer.state_dict(), Path(folder) / "scripted.pt")

    def load_optimizer_state(self, folder: Path) -> None:
        state = torch.load(Path(folder) / "scripted.pt", weights_only=True)
        self.optimizer.load_state_dict(state)
        self.set_learning_rate_scale(1.0)  # the configured lr wins over the saved one

    def set_learning_rate_scale(self, scale: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * scale

    def close(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def _scores(self, token_ids: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
        logp = torch.log_softmax(self.logits / temperature, dim=0)
        entropy = -(logp.exp() * logp).sum()
        return logp[token_ids % len(RESPONSES)], entropy.expand(token_ids.shape).clone()

    def _step(
        self, loss: Tensor, batch: PackedBatch, loss_tokens: int, extra: dict[str, float]
    ) -> StepStats:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(self.logits.grad.norm()) if self.logits.grad is not None else 0.0
        self.optimizer.step()
        return StepStats(float(loss.detach()), norm, batch.num_tokens, loss_tokens, extra)


class ScriptedRolloutEngine:
    """`RolloutEngine`: samples response tokens from softmax(logits / T), seeded per prompt."""

    weight_transports = ("stream",)

    def __init__(self, model_path: str) -> None:
        self.logits = _initial_logits(model_path)

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        return [self._answer(c, sampling) for c in conversations]

    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return [list(PROMPT_IDS) for _ in conversations]

    def load_weights(self, weights: WeightStream) -> None:
        self.logits = _read_stream(weights, "scripted engine")

    def release_memory(self) -> None:
        """Nothing to release."""

    def reclaim_memory(self) -> None:
        """Nothing to take back."""

    def close(self) -> None:
        """Nothing to free."""

    def _answer(self, conversation: Conversation, sampling: SamplingParams) -> list[Completion]:
        key = json.dumps([sampling.seed, list(conversation)], sort_keys=True)
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1
        generator = torch.Generator().manual_seed(seed)
        greedy = sampling.temperature == 0
        logp = torch.log_softmax(self.logits / (1.0 if greedy else sampling.temperature), dim=0)
        completions = []
        for _ in range(sampling.n):
            if greedy:
                token = int(torch.argmax(logp))
            else:
                token = int(torch.multinomial(logp.exp(), 1, generator=generator))
            completions.append(
                Completion(
                    text=RESPONSES[token],
                    token_ids=[token],
                    logprobs=[float(logp[token])],
                    finish_reason="stop",
                )
            )
        return completions


def start_scripted_policy(
    config: TrainConfig, model_path: str, lr: float | None, placement: Colocation | None
) -> ScriptedPolicy:
    """The `scripted` policy backend."""
    return ScriptedPolicy(
        model_path, lr or config.policy.torch.lr, config.rollout.temperature, config
    )


def start_scripted_engine(
    config: TrainConfig, model_path: str, placement: Colocation | None
) -> ScriptedRolloutEngine:
    """The `scripted` rollout backend."""
    return ScriptedRolloutEngine(model_path)


def paris_samples(count: int) -> list[TaskSample]:
    """Questions whose answer is always paris: a policy that reads nothing can still learn."""
    return [
        TaskSample(
            id=f"q-{i}",
            task_type="reading",
            question=f"Where is landmark {i}?",
            answers=["paris"],
            context=f"Landmark {i} stands in paris.",
        )
        for i in range(count)
    ]


def scripted_config(model_dir: Path, dataset: Path, **changes: Any) -> TrainConfig:
    """A short in-process run of the scripted backends over `dataset` (`changes` on top)."""
    base: dict[str, Any] = {
        "model": str(model_dir),
        "data": {"train": [str(dataset)]},
        "steps": 6,
        "seed": 1,
        "sampler": {"batch_size": 4, "tasks": ["reading"]},
        "rollout": {"backend": "scripted", "group_size": 4, "temperature": 1.0},
        "policy": {"backend": "scripted", "torch": {"lr": 0.2}},
        "advantage": {"estimator": "grpo"},
        "aepo": {"enabled": False},
        "ray": {"enabled": False},
    }
    return load_config_dict({**base, **changes}, TrainConfig, "test")


if "scripted" not in POLICY_BACKENDS:
    POLICY_BACKENDS.add("scripted", start_scripted_policy)
if "scripted" not in ROLLOUT_BACKENDS:
    ROLLOUT_BACKENDS.add("scripted", start_scripted_engine)
