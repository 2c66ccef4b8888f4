"""The Megatron-Core policy behind the `PolicyRank` protocol (`policy.backend: megatron`).

Each Ray actor (or the driver, without Ray) is one Megatron rank: it joins the process groups of
`policy.megatron.parallel`, builds this rank's part of the Qwen3-MoE `GPTModel`, and fills it
from the HF checkpoint, reading only its own slices. A micro-batch of the rank's share is run
packed: the sequences back to back in one row, each with positions from 0 and a block-diagonal
causal mask, so a sequence sees exactly what it would see alone (Megatron's own attention does
not take packed sequences without Transformer Engine). Log-probs and full-vocabulary entropy
are computed vocabulary-parallel: the logits never leave their tensor-parallel shard.

The loss of every micro-batch is already divided by the global token count (qwenlong.rl.losses),
so gradients are SUMMED over the data-parallel copies (dense layers over data x context
parallel, experts over expert-data parallel) and the step is the same at every layout. The
gradient norm counts each shard once (`ParameterRole.counted`); each step logs the per-layer
expert load (qwenlong.rl.megatron.expert_load). On CPU the optimizer is plain float32
AdamW; a GPU run with bf16 would take Megatron's distributed optimizer (not built yet).

Layouts this rank runs: tensor, expert (and expert-tensor), context and data parallel. Under
context parallel each rank runs its two chunks of the packed row (qwenlong.rl.megatron.row)
with a key-gathering attention (on CPU; Transformer Engine's on GPU), scores the tokens its
chunks predict, and the loss figures are summed over the CP group. Pipeline parallel is refused
at setup until its schedule lands.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

from qwenlong.core.errors import BackendError, CheckpointError, ConfigError, first_line
from qwenlong.core.hf_weights import ChunkedStream
from qwenlong.core.safetensors_io import write_sharded
from qwenlong.rl.batch_checks import check_batch, check_trainable, check_update
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, RankLayout, StepStats, TokenStats
from qwenlong.rl.losses import LossConfig, compute_loss
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.megatron.expert_load import ExpertLoad
from qwenlong.rl.megatron.row import build_row
from qwenlong.rl.micro_batches import MicroBatchPlanner, Plan
from qwenlong.rl.optimizer_state import load_optimizer, save_optimizer
from qwenlong.rl.policy_group import PolicyGroup, rendezvous_address

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig

SHARD_BYTES = 2 * 1024**3
"""Largest safetensors file `save_pretrained` writes (HF's layout). Our choice."""


class MegatronPolicyRank:
    """One Megatron-Core rank of the policy, implementing `PolicyRank`."""

    def __init__(
        self,
        model_path: str,
        config: MegatronPolicyConfig,
        loss: LossConfig,
        rank: int,
        world_size: int,
        seed: int = 0,
    ) -> None:
        self.model_path, self.config, self.loss = model_path, config, loss
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.where = f"megatron policy rank {rank} ({model_path})"
        self.model: Any = None
        self.incoming = ChunkedStream(self._weight_receiver)

    # --- lifecycle ----------------------------------------------------------------------

    def rendezvous_address(self) -> str:
        """Where the ranks meet (asked of rank 0)."""
        return rendezvous_address()

    def setup(self, init_method: str | None) -> RankLayout:
        """Join the process groups, build this rank's model part and load its HF slices."""
        from megatron.core import parallel_state as ps
        from transformers import AutoConfig

        from qwenlong.rl.megatron.convert import load_hf_into_megatron
        from qwenlong.rl.megatron.model import build_model, init_parallel

        parallel = self.config.parallel
        if parallel.pipeline > 1:
            raise ConfigError(
                "policy.megatron.parallel: pipeline parallel is not run by the policy yet "
                "(tensor, expert, context and data parallel are)"
            )
        if self.config.torch_threads is not None:
            torch.set_num_threads(self.config.torch_threads)
        if not (Path(self.model_path) / "config.json").is_file():
            raise BackendError(f"{self.where}: no model directory (config.json not found)")
        init_method = init_method or self.rendezvous_address()
        init_parallel(
            parallel,
            self.world_size,
            self.rank,
            init_method,
            device=self.config.device,
            seed=self.seed,
        )
        self.hf_config = AutoConfig.from_pretrained(self.model_path)
        self.model = build_model(self.hf_config, self.config)
        try:
            load_hf_into_megatron(self.model, self.model_path)
        except CheckpointError as err:
            raise CheckpointError(f"{self.where}: {first_line(err)}") from None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.roles = parameter_roles(self.model)
        self.expert_load = ExpertLoad(self.model) if self.config.moe.log_expert_load else None
        self.optimizer = torch.optim.AdamW(self.params, **self._optimizer_settings())
        self.vocab_size = int(self.hf_config.vocab_size)
        self.tp_group = ps.get_tensor_model_parallel_group()
        self.vocab_start = ps.get_tensor_model_parallel_rank() * (
            self.vocab_size // ps.get_tensor_model_parallel_world_size()
        )
        self.cp_group = ps.get_context_parallel_group()
        self.cp_size = dist.get_world_size(self.cp_group)
        self.cp_rank = dist.get_rank(self.cp_group)
        reports = ps.get_tensor_model_parallel_rank() == 0 and self.cp_rank == 0
        return RankLayout(ps.get_data_parallel_rank(), ps.get_data_parallel_world_size(), reports)

    def close(self) -> None:
        """Leave Megatron's groups (and the process group) and drop the model."""
        from qwenlong.rl.megatron.model import destroy_parallel

        if self.model is not None:
            destroy_parallel()
        self.model = None

    # --- forward and steps --------------------------------------------------------------

    @torch.no_grad()
    def forward_logprobs(
        self, batch: PackedBatch, mask: Tensor | None, micro_batches: Plan
    ) -> TokenStats:
        check_batch(batch, self.vocab_size, self.where)
        self.model.eval()
        logprobs = torch.zeros(batch.num_tokens, dtype=torch.float32)
        entropy = torch.zeros(batch.num_tokens, dtype=torch.float32)
        wanted = None if mask is None else mask.bool()
        for micro in micro_batches:
            scored = self._score(batch, micro, wanted, self.config.temperature)
            for positions, values, entropies in self._across_context(scored):
                logprobs[positions] = values.float().cpu()
                entropy[positions] = entropies.float().cpu()
        return TokenStats(logprobs=logprobs, entropy=entropy)

    def train_step(
        self, batch: PackedBatch, update: PolicyUpdate, global_sequences: int, micro_batches: Plan
    ) -> StepStats:
        check_batch(batch, self.vocab_size, self.where)
        mask = check_update(batch, update, self.where)
        sequence_index = batch.sequence_index()
        self.model.train()
        total, extra = 0.0, {}
        if self.expert_load is not None:
            self.expert_load.start()
        for micro in micro_batches:
            positions, logprobs, _ = self._score(batch, micro, mask, self.config.temperature)
            if positions.numel() == 0:
                (logprobs.sum() * 0.0).backward()  # take part in the collectives
                continue
            loss, stats = compute_loss(
                logprobs,
                _pick(update.old_logprobs, positions),
                _pick(update.ref_logprobs, positions),
                update.advantages[positions].float(),
                torch.ones(positions.numel(), dtype=torch.bool),
                update.global_tokens,
                self.loss,
                seq_index=sequence_index[positions],
                global_sequences=global_sequences,
            )
            loss.backward()
            total += float(loss.detach())
            for key, value in stats.items():
                extra[key] = extra.get(key, 0.0) + value
        total, extra = self._sum_over_context(total, extra)
        grad_norm = self._apply_gradients(extra)
        if self.expert_load is not None:
            parallel = self.config.parallel
            duplicated = 1 if parallel.sequence_parallel else parallel.tensor
            extra.update(self.expert_load.finish(duplicated, report=dist.get_rank() == 0))
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra)

    def sft_step(self, batch: PackedBatch, global_tokens: int, micro_batches: Plan) -> StepStats:
        check_batch(batch, self.vocab_size, self.where)
        mask = batch.loss_mask.bool()
        check_trainable(batch, mask, "loss_mask", global_tokens, self.where)
        self.model.train()
        total = 0.0
        for micro in micro_batches:
            _, logprobs, _ = self._score(batch, micro, mask, 1.0)
            loss = -logprobs.sum() / max(global_tokens, 1)
            loss.backward()
            total += float(loss.detach())
        total, extra = self._sum_over_context(total, {})
        grad_norm = self._apply_gradients(extra)
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra)

    # --- weights and state --------------------------------------------------------------

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """Every rank takes part; rank 0 yields each HF tensor on the CPU."""
        from qwenlong.rl.megatron.convert import export_megatron_to_hf

        for name, tensor in export_megatron_to_hf(self.model):
            yield name, tensor.to("cpu", copy=True)

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One chunk of an HF weight stream (whole tensors; each rank keeps its slices)."""
        self.incoming.receive(chunk, last)

    def save_pretrained(self, out_dir: str) -> None:
        """Every rank takes part in the export; rank 0 writes the HF folder."""
        from transformers import AutoTokenizer

        weights = self.export_weights()
        if self.rank != 0:
            for _ in weights:
                pass
            return
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_sharded(out, weights, SHARD_BYTES)
        self.hf_config.save_pretrained(out)
        AutoTokenizer.from_pretrained(self.model_path).save_pretrained(out)

    def save_optimizer_state(self, folder: str) -> None:
        save_optimizer(self.optimizer, folder, self.rank)

    def load_optimizer_state(self, folder: str) -> None:
        load_optimizer(self.optimizer, folder, self.rank, self._optimizer_settings(), self.where)

    # --- internals ----------------------------------------------------------------------

    def _weight_receiver(self) -> Any:
        from qwenlong.rl.megatron.convert import MegatronWeightReceiver

        return MegatronWeightReceiver(self.model)

    def _optimizer_settings(self) -> dict[str, Any]:
        c = self.config
        return {"lr": c.lr, "betas": c.betas, "eps": c.eps, "weight_decay": c.weight_decay}

    def _score(
        self, batch: PackedBatch, micro: list[int], wanted: Tensor | None, temperature: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(packed positions, log-probs, entropy) of the predicted tokens of `micro` (only the
        `wanted` ones), the sequences run packed in one row. An empty micro-batch runs one
        padding token, so that every rank takes part in the MoE dispatch."""
        from qwenlong.rl.megatron.vocab_parallel import vocab_parallel_logprobs_and_entropy

        sub = batch.select(micro) if micro else PackedBatch.from_sequences([[0]], [[]])
        row = build_row(sub, self._row_length(sub.num_tokens), self.cp_size, self.cp_rank)
        logits = self.model(input_ids=row.ids, position_ids=row.positions, attention_mask=row.mask)[
            0
        ]
        offsets = batch.token_positions(micro) if micro else torch.zeros(1, dtype=torch.long)
        predicts = row.predicts.clone()
        if wanted is not None and micro:
            chosen = predicts.nonzero().squeeze(1)
            predicts[chosen] = wanted[offsets[row.local[chosen] + 1]]
        at = predicts.nonzero().squeeze(1)
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(
            logits[at],
            row.targets[at],
            temperature,
            self.tp_group,
            self.vocab_start,
            vocab_size=self.vocab_size,
        )
        if not micro:
            return torch.zeros(0, dtype=torch.long), logits.sum() * 0.0, logits.sum() * 0.0
        return offsets[row.local[at] + 1], logprobs, entropy

    def _reduce_tensor_parallel_duplicates(self) -> None:
        """Megatron's `finalize_model_grads` rule for parameters replicated over tensor
        parallel (qwenlong reduces by hand: its DDP wrapper is built for CUDA buffers)."""
        from megatron.core import parallel_state as ps

        group = ps.get_tensor_model_parallel_group()
        if dist.get_world_size(group) == 1:
            return
        sequence_parallel = self.config.parallel.sequence_parallel
        for role in self.roles:
            op = _tp_reduction(role.name, role.param, sequence_parallel)
            if op is not None and not role.expert:
                dist.all_reduce(role.param.grad, op=op, group=group)

    def _across_context(self, scored: tuple[Tensor, Tensor, Tensor]) -> list[tuple]:
        """Every context-parallel rank's (positions, log-probs, entropy) of a micro-batch:
        each rank scores the tokens its chunks predict."""
        if self.cp_size == 1:
            return [scored]
        parts: list = [None] * self.cp_size
        dist.all_gather_object(parts, tuple(t.detach().cpu() for t in scored), self.cp_group)
        return parts

    def _sum_over_context(
        self, total: float, extra: dict[str, float]
    ) -> tuple[float, dict[str, float]]:
        """The step's loss and loss figures over the context-parallel ranks (each one's is the
        contribution of its own tokens, already divided by the global count)."""
        if self.cp_size == 1:
            return total, extra
        keys = sorted(extra)
        values = torch.tensor([total, *(extra[k] for k in keys)], dtype=torch.float64)
        dist.all_reduce(values, op=dist.ReduceOp.SUM, group=self.cp_group)
        return float(values[0]), {k: float(v) for k, v in zip(keys, values[1:], strict=True)}

    def _row_length(self, tokens: int) -> int:
        """The packed row's length: its own, or with the all-gather dispatcher and expert
        parallel, the longest of all ranks' (that dispatcher gathers equal-sized token blocks
        from the expert-parallel ranks; all-to-all exchanges the sizes and needs no padding);
        under context parallel rounded up to a multiple of 2 x CP (its chunks)."""
        if self.config.moe.token_dispatcher == "allgather" and self.config.parallel.expert > 1:
            longest = torch.tensor([tokens])
            dist.all_reduce(longest, op=dist.ReduceOp.MAX)
            tokens = int(longest)
        chunks = 2 * self.cp_size if self.cp_size > 1 else 1
        return -(-tokens // chunks) * chunks

    def _apply_gradients(self, extra: dict[str, float]) -> float:
        """Sum gradients over the data-parallel copies, clip by the global norm, step."""
        from megatron.core import parallel_state as ps

        for param in self.params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        self._reduce_tensor_parallel_duplicates()
        dense_group = ps.get_data_parallel_group(with_context_parallel=True)
        expert_group = ps.get_expert_data_parallel_group()
        squares = torch.zeros(1, dtype=torch.float64)
        for role in self.roles:
            group = expert_group if role.expert else dense_group
            if dist.get_world_size(group) > 1:
                dist.all_reduce(role.param.grad, op=dist.ReduceOp.SUM, group=group)
            if role.counted:
                squares += role.param.grad.double().pow(2).sum()
        if dist.get_world_size() > 1:
            dist.all_reduce(squares, op=dist.ReduceOp.SUM)
        norm = float(squares.sqrt())
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        if math.isfinite(norm):
            if norm > max_norm:
                scale = max_norm / (norm + 1e-6)
                for param in self.params:
                    param.grad.mul_(scale)
            self.optimizer.step()
            extra["step_skipped"] = 0.0
        else:
            extra["step_skipped"] = 1.0
        self.optimizer.zero_grad(set_to_none=True)
        return norm


def _tp_reduction(name: str, param: Tensor, sequence_parallel: bool) -> Any:
    """How a parameter held whole on every tensor-parallel rank combines its gradients there:
    summed when each rank saw part of its inputs (norms and the router under sequence
    parallel; q/k norms, shared by heads that TP splits), averaged where Megatron marks it,
    else None (each rank already holds the full gradient, or its own shard's)."""
    if getattr(param, "average_gradients_across_tp_domain", False):
        return dist.ReduceOp.AVG
    if sequence_parallel and getattr(param, "sequence_parallel", False):
        return dist.ReduceOp.SUM
    if "q_layernorm" in name or "k_layernorm" in name:
        return dist.ReduceOp.SUM
    return None


@dataclass(frozen=True)
class ParameterRole:
    """Where one trainable parameter of this rank sits in the parallel layout."""

    name: str
    param: Tensor
    expert: bool
    """A routed expert's: its gradient is summed over the expert-data-parallel copies, the
    others' over data x context parallel."""
    counted: bool
    """Whether this rank's copy enters the global gradient norm: one copy of each shard
    (replica 0 of its data-parallel copies, and for a tensor-parallel duplicate such as a norm
    or the router, tensor-parallel rank 0 only): the same rule as the weight export."""


def parameter_roles(model: Any) -> list[ParameterRole]:
    """Each trainable parameter's role, from the converter's layout of its global name."""
    from qwenlong.rl.megatron.convert import ParallelInfo, dims_of, global_parameters
    from qwenlong.rl.megatron.weight_layout import layout

    dims, where = dims_of(model), ParallelInfo.current()
    roles = []
    for name, param in global_parameters(model).items():
        if param.requires_grad:
            placed = layout(name, dims)
            roles.append(ParameterRole(name, param, placed.group == "etp", where.sends(placed)))
    return roles


def _pick(values: Tensor | None, positions: Tensor) -> Tensor | None:
    return None if values is None else values[positions].float()


def start_megatron_policy(config: TrainConfig, model_path: str, lr: float | None) -> PolicyGroup:
    """`policy.num_workers` Megatron ranks from `model_path` (in this process without Ray)."""
    megatron = config.policy.megatron.model_copy(
        update={"temperature": config.rollout.temperature, **({"lr": lr} if lr else {})}
    )
    workers = config.policy.num_workers
    try:
        megatron.parallel.check_world(workers)
    except ValueError as err:
        raise ConfigError(f"policy.megatron.parallel: {err}") from None
    ranks = [
        (MegatronPolicyRank, (model_path, megatron, config.loss, rank, workers, config.seed))
        for rank in range(workers)
    ]
    return PolicyGroup(
        ranks,
        MicroBatchPlanner(megatron.micro_batch_tokens, None, packed=True),
        num_cpus_per_rank=config.policy.num_cpus_per_worker,
        num_gpus_per_rank=config.policy.num_gpus_per_worker,
        in_process=not config.ray.enabled,
        bucket_bytes=int(config.weight_sync.bucket_mb * 2**20),
        name=f"megatron policy ({Path(model_path).name})",
    )
