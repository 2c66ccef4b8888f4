"""The torch policy backend: an HF causal LM trained with AdamW, on CPU or GPU, in data parallel.

`TorchPolicy` is one data-parallel rank; `TorchPolicyRank` is its body inside a Ray actor (or
the driver), and `start_torch_policy`, the `torch` entry of the policy-backend registry, puts N
of them behind one `Policy` (qwenlong.rl.policy_group). A rank's share of a `PackedBatch` runs
in the micro-batches the group planned (qwenlong.rl.micro_batches), each unpacked into a
right-padded batch (qwenlong.rl.padded_forward), each row with its own positions 0..L-1 and an
attention mask, so a sequence sees exactly the context it would see alone. Logits are divided by the rollout temperature before
the log-softmax, because the log-probs the loss differentiates must be those of the policy the
rollouts were sampled from (qwenlong.core.backends.hf reports log_softmax(logits / T) too).

`train_step` accumulates the gradients of every micro-batch's loss contribution, then, with
several ranks, sums them over the data-parallel group (the contributions are already divided by
the global token count, so the sum is the whole batch's gradient), clips the norm and steps
AdamW. Every rank ends the step with identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch import Tensor

from qwenlong.core.backends.hf import quiet_progress_bars
from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import BackendError, first_line
from qwenlong.core.file_modes import apply_umask
from qwenlong.core.hf_weights import HFWeightReceiver, export_hf_weights, load_hf_weights
from qwenlong.rl.batch_checks import check_batch, check_per_token, check_trainable, check_update
from qwenlong.rl.data_parallel import all_reduce_gradients
from qwenlong.rl.interfaces import (
    PackedBatch,
    PolicyUpdate,
    StepStats,
    TokenStats,
    WeightStream,
)
from qwenlong.rl.losses import LossConfig, compute_loss
from qwenlong.rl.micro_batches import MicroBatchPlanner, Plan
from qwenlong.rl.optimizer_state import load_optimizer, save_optimizer
from qwenlong.rl.padded_forward import accepts_logits_to_keep, pad_micro_batch, score_micro_batch
from qwenlong.rl.shared_prefix import (
    pad_shared_micro_batch,
    prefix_groups,
    score_shared_micro_batch,
    shares_a_prompt,
)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class TorchPolicyConfig(ConfigModel):
    """Optimizer, micro-batching and numerics of the torch policy."""

    lr: float = Field(default=2e-6, gt=0)
    """AdamW learning rate, constant (no warm-up or decay): the paper's 2e-6."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW decoupled weight decay. The paper is silent; verl's actor default."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW moment decay rates. The paper is silent; the torch and verl default."""
    eps: float = Field(default=1e-8, gt=0)
    """AdamW denominator epsilon. The torch default."""
    grad_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this; None only measures it. The paper is silent;
    verl's default."""
    micro_batch_tokens: int | None = Field(default=8192, ge=1)
    """Padded tokens (rows x longest row) per micro-batch: bounds activation memory. A longer
    sequence runs alone. With `shared_prompts`, prompts x longest prompt + sequences x longest
    response: a group shares its prompt only as far as it fits, so at the paper's lengths
    (60K+ prompts) raise it to about prompt + G x response to share at all. None: no token
    limit. Our choice."""
    micro_batch_size: int | None = Field(default=None, ge=1)
    """Sequences per micro-batch at most; None: no row limit. Both limits may be set."""
    temperature: float = Field(default=0.7, gt=0)
    """Logits are divided by this before the log-softmax, as in the rollouts: the paper's
    rollout temperature 0.7. Must equal the sampling temperature for the ratio to be 1."""
    entropy_chunk_size: int = Field(default=1024, ge=1)
    """Token rows per chunk of the log-softmax / entropy computation (bounded memory)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Weights, gradients and optimizer state dtype. float32 on CPU; bfloat16 halves memory on
    GPU at the cost of precision in the update (no float32 master copy is kept)."""
    device: str = "cpu"
    """Torch device: "cpu", "cuda", "cuda:1", or "auto" (CUDA when present, else CPU)."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass: less memory, ~30% more time."""
    shared_prompts: bool = True
    """Run each prompt once for all the sequences that begin with it (a group's G responses),
    the responses then reading its KV cache, rather than once per sequence: the same log-probs
    and gradients (qwenlong.rl.shared_prefix) for about 1/G of the prompt's work, which is
    most of the work on long prompts. Ignored under gradient_checkpointing, which drops the
    cache. Ours."""
    torch_threads: int | None = None
    """torch intra-op threads for this rank; set 1 when several ranks share few cores."""
    allreduce_bucket_mb: float = Field(default=64.0, gt=0)
    """Gradients are summed across ranks in flat buckets of about this size. Our choice."""
    loss: LossConfig = LossConfig()
    """The policy loss (qwenlong.rl.losses): clipping, KL, aggregation."""

    def planner(self) -> MicroBatchPlanner:
        """The micro-batch plan of these limits; the policy group plans with the same one."""
        return MicroBatchPlanner(
            self.micro_batch_tokens,
            self.micro_batch_size,
            shared_prompts=self.shared_prompts and not self.gradient_checkpointing,
        )


class TorchPolicy:
    """One data-parallel rank of the torch policy, implementing `Policy`.

    With `world_size` > 1 every rank must be built from the same model directory and config,
    and `torch.distributed` must be initialised; `process_group` (default: the world group) is
    the data-parallel group the gradients are summed over. Inputs (`PackedBatch`,
    `PolicyUpdate`) and returned `TokenStats` live on the CPU whatever the device.
    """

    def __init__(
        self,
        model_path: str | Path,
        config: TorchPolicyConfig = TorchPolicyConfig(),
        rank: int = 0,
        world_size: int = 1,
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise BackendError(f"torch policy: rank {rank} is not in a world of {world_size}")
        if world_size > 1:
            if not dist.is_initialized():
                raise BackendError(
                    f"torch policy rank {rank}: world_size {world_size} but torch.distributed "
                    "is not initialised"
                )
            if dist.get_world_size(process_group) != world_size:
                raise BackendError(
                    f"torch policy rank {rank}: world_size {world_size} but the process group "
                    f"has {dist.get_world_size(process_group)} ranks"
                )
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        self.config = config
        self.rank = rank
        self.world_size = world_size
        self.process_group = process_group
        self.model_path = Path(model_path)
        self.device = resolve_device(config.device)
        self.model = _load_model(self.model_path, _DTYPES[config.dtype], self.device)
        if config.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, **self._optimizer_settings())
        self.vocab_size = int(self.model.get_input_embeddings().num_embeddings)
        pad = getattr(self.model.config, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self.where = f"torch policy rank {rank} ({self.model_path})"
        self._head_subset = accepts_logits_to_keep(self.model)

    # --- Policy -------------------------------------------------------------------------

    @property
    def planner(self) -> MicroBatchPlanner:
        """This rank's micro-batch limits (the group plans with the same ones)."""
        return self.config.planner()

    @torch.no_grad()
    def forward_logprobs(
        self, batch: PackedBatch, mask: Tensor | None = None, micro_batches: Plan | None = None
    ) -> TokenStats:
        """Log-probs of `batch.input_ids` under softmax(logits / temperature) and the entropy
        of that distribution, packed like the input (0 at each sequence's first token).

        `mask` ([N] bool, optional) limits the work to the positions it marks (typically the
        loss mask: the trainer needs response tokens only); the others hold 0. On long prompts
        this skips most of the output head and the full-vocabulary entropy. `micro_batches`:
        the group's plan; None plans here.
        """
        check_batch(batch, self.vocab_size, self.where)
        check_per_token("mask", mask, batch, self.where)
        self.model.eval()
        logprobs = torch.zeros(batch.num_tokens, dtype=torch.float32)
        entropy = torch.zeros(batch.num_tokens, dtype=torch.float32)
        wanted = None if mask is None else mask.bool()
        plan = self.planner.plan(batch, wanted) if micro_batches is None else micro_batches
        for positions, values, entropies in self._score(
            batch, wanted, self.config.temperature, plan
        ):
            logprobs[positions] = values.cpu()
            entropy[positions] = entropies.cpu()
        return TokenStats(logprobs=logprobs, entropy=entropy)

    def train_step(
        self,
        batch: PackedBatch,
        update: PolicyUpdate,
        *,
        global_sequences: int | None = None,
        micro_batches: Plan | None = None,
    ) -> StepStats:
        """One AdamW step on the loss of `batch` (this rank's share of the global batch).

        Only tokens in `update.token_mask` are run through the log-softmax and only sequences
        holding one are run through the model. `global_sequences` (sequences of the global
        batch with a token in the mask) is needed by the sequence-level loss aggregations; by
        default it is counted in `batch`, right only when `batch` is the whole global batch.
        `loss` and `extra` are this rank's contributions: sum them over ranks. The log-probs
        the loss saw come back too (qwenlong.rl.trained_stats): on-policy they are pi_old.
        """
        check_batch(batch, self.vocab_size, self.where)
        mask = check_update(batch, update, self.where)
        sequence_index = batch.sequence_index()
        if global_sequences is None:
            global_sequences = int(torch.unique(sequence_index[mask]).numel())
        plan = self.planner.plan(batch, mask) if micro_batches is None else micro_batches
        self.model.train()
        total = 0.0
        extra: dict[str, float] = {}
        seen = torch.full((batch.num_tokens,), float("nan"), dtype=torch.float32)
        for pos, logprobs, _ in self._score(batch, mask, self.config.temperature, plan):
            seen[pos] = logprobs.detach().float().cpu()
            loss, stats = compute_loss(
                logprobs,
                _pick(update.old_logprobs, pos, self.device),
                _pick(update.ref_logprobs, pos, self.device),
                update.advantages[pos].to(self.device, torch.float32),
                torch.ones(pos.numel(), dtype=torch.bool, device=self.device),
                update.global_tokens,
                self.config.loss,
                seq_index=sequence_index[pos].to(self.device),
                global_sequences=global_sequences,
                is_weights=_pick(update.is_weights, pos, self.device),
                token_weights=_pick(update.token_weights, pos, self.device),
            )
            loss.backward()
            total += float(loss.detach())
            for key, value in stats.items():
                extra[key] = extra.get(key, 0.0) + value
        grad_norm = self._apply_gradients(extra)
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra, seen)

    def sft_step(
        self, batch: PackedBatch, global_tokens: int, micro_batches: Plan | None = None
    ) -> StepStats:
        """One AdamW step on the cross-entropy of the loss-mask tokens (the SFT warm start).

        The summed token negative log-likelihood is divided by `global_tokens` (the loss-mask
        tokens of the whole global batch), the same normalisation as the RL loss, so the step
        does not depend on how the batch was split. Plain cross-entropy at temperature 1: the
        likelihood of the data itself, not of the tempered sampling policy.
        """
        check_batch(batch, self.vocab_size, self.where)
        mask = batch.loss_mask.bool()
        check_trainable(batch, mask, "loss_mask", global_tokens, self.where)
        plan = self.planner.plan(batch, mask) if micro_batches is None else micro_batches
        self.model.train()
        total = 0.0
        for _, logprobs, _ in self._score(batch, mask, 1.0, plan):
            loss = -logprobs.sum() / max(global_tokens, 1)
            loss.backward()
            total += float(loss.detach())
        extra: dict[str, float] = {}
        grad_norm = self._apply_gradients(extra)
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra)

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """The weights under HF's on-disk names (qwenlong.core.hf_weights), one at a time:
        detached views of the live parameters on the policy's device, to be consumed or
        copied before the next step changes them."""
        return export_hf_weights(self.model)

    # --- state --------------------------------------------------------------------------

    def load_weights(self, weights: WeightStream) -> None:
        """Copy a complete stream of HF on-disk named tensors into the model (strict)."""
        load_hf_weights(self.model, weights, self.where)

    def weight_receiver(self) -> HFWeightReceiver:
        """A receiver for a weight stream that arrives in pieces."""
        return HFWeightReceiver(self.model, self.where)

    def save_optimizer_state(self, folder: str | Path) -> Path:
        """Write this rank's AdamW state to `folder` (qwenlong.rl.optimizer_state)."""
        return save_optimizer(self.optimizer, folder, self.rank)

    def load_optimizer_state(self, folder: str | Path) -> None:
        """Read this rank's AdamW state from `folder`; the config's settings win."""
        load_optimizer(self.optimizer, folder, self.rank, self._optimizer_settings(), self.where)

    def set_learning_rate_scale(self, scale: float) -> None:
        """The configured lr x `scale` from the next step on."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * scale

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the model (safetensors, HF layout) and its tokenizer to `out_dir`, loadable by
        `AutoModelForCausalLM` and the `hf` chat backend."""
        from transformers import AutoTokenizer

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with quiet_progress_bars():
            self.model.save_pretrained(out)
            AutoTokenizer.from_pretrained(self.model_path).save_pretrained(out)
        apply_umask(out.glob("*.safetensors"))  # safetensors writes its files 0600
        return out

    # --- internals ----------------------------------------------------------------------

    def _optimizer_settings(self) -> dict[str, Any]:
        config = self.config
        return {
            "lr": config.lr,
            "betas": config.betas,
            "eps": config.eps,
            "weight_decay": config.weight_decay,
        }

    def _score(
        self, batch: PackedBatch, wanted: Tensor | None, temperature: float, plan: Plan
    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """(packed positions, log-probs, entropy) of each micro-batch of `plan` in turn.

        Covers every predicted token, or only the `wanted` ones. An empty micro-batch (the
        group evens out the counts of all ranks) has nothing to run here: the gradients are
        summed once per step, not per micro-batch. Log-probs carry gradient when autograd is
        on, so a caller can backward each micro-batch's loss before the next one is built.
        A micro-batch whose sequences share a prompt runs it once (qwenlong.rl.shared_prefix).
        """
        share = self.planner.shared_prompts
        layout = {"pad_id": self.pad_id, "device": self.device, "head_subset": self._head_subset}
        chunk = self.config.entropy_chunk_size
        for micro in plan:
            if not micro:
                continue
            groups = prefix_groups(batch, micro) if share else []
            if shares_a_prompt(groups):
                shared = pad_shared_micro_batch(batch, groups, wanted, **layout)
                logprobs, entropy = score_shared_micro_batch(self.model, shared, temperature, chunk)
                yield shared.positions, logprobs, entropy
            else:
                padded = pad_micro_batch(batch, micro, wanted, **layout)
                logprobs, entropy = score_micro_batch(self.model, padded, temperature, chunk)
                yield padded.positions, logprobs, entropy

    def _apply_gradients(self, extra: dict[str, float]) -> float:
        """Sum gradients over ranks, clip, step, zero; return the pre-clip global norm.

        A parameter that got no gradient (an expert no token was routed to) gets zeros, so every
        rank reduces the same tensors and AdamW treats it the same whatever the split. A
        non-finite norm skips the update (weights untouched) and sets extra["step_skipped"].
        """
        for param in self.params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        if self.world_size > 1:
            all_reduce_gradients(
                [param.grad for param in self.params],
                self.process_group,
                int(self.config.allreduce_bucket_mb * 2**20),
            )
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if math.isfinite(norm):
            self.optimizer.step()
            extra["step_skipped"] = 0.0
        else:
            extra["step_skipped"] = 1.0
        self.optimizer.zero_grad(set_to_none=True)
        return norm


def _pick(values: Tensor | None, positions: Tensor, device: torch.device) -> Tensor | None:
    return None if values is None else values[positions].to(device, torch.float32)


def resolve_device(device: str) -> torch.device:
    """The torch device a config's `device` string names ("auto": CUDA when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise BackendError(f"torch policy: unknown device {device!r}") from None


def _load_model(path: Path, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    if not (path / "config.json").is_file():
        raise BackendError(f"torch policy: no model directory at {path} (config.json not found)")
    try:
        with quiet_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        return model.to(device)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise BackendError(
            f"torch policy: cannot load model from {path}: {first_line(err)}"
        ) from None
