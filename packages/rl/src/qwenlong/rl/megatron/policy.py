"""The Megatron-Core policy behind the `PolicyRank` protocol (`policy.backend: megatron`).

Each Ray actor (or the driver, without Ray) is one Megatron rank: it joins the process groups of
`policy.megatron.parallel`, builds this rank's part of the Qwen3-MoE `GPTModel`, and fills it
from the HF checkpoint, reading only its own slices. A micro-batch of the rank's share is run
packed: the sequences back to back in one row, in the row format of its layer spec (qwenlong.rl.megatron.row): under Megatron's local layers
(any device) one row with a block-diagonal causal mask, so a sequence sees exactly what it would
see alone; under Transformer Engine's (GPU) THD-packed sequences bounded by their cu_seqlens.
Log-probs and full-vocabulary entropy are computed vocabulary-parallel: the logits never leave
their tensor-parallel shard.

The loss of every micro-batch is already divided by the global token count (qwenlong.rl.losses),
so gradients are SUMMED over the data-parallel copies and the step is the same at every
layout; the routers' auxiliary losses are averaged as Megatron's schedules do. The optimizer
(qwenlong.rl.megatron.optimizer) is float32 AdamW with gradients reduced by hand (any device),
or Megatron's DDP and distributed optimizer (GPU: float32 main weights under bf16). Each step
logs the per-layer expert load (qwenlong.rl.megatron.expert_load).

Layouts this rank runs: tensor, expert (and expert-tensor), context, pipeline and data
parallel. Under
context parallel each rank runs its chunks of the packed row (the whole row's on the local
layers with a key-gathering attention; each sequence's with TE), scores the tokens its chunks
predict, and the loss figures are summed over the CP group. Under pipeline parallel the
micro-batches go through the stages in GPipe's schedule (qwenlong.rl.megatron.pipeline) and the
last stage scores them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
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
from qwenlong.rl.megatron.expert_load import ExpertLoad, router_losses
from qwenlong.rl.megatron.optimizer import make_optimizer
from qwenlong.rl.megatron.pipeline import Pipeline, Visit
from qwenlong.rl.megatron.row import PackedRow
from qwenlong.rl.megatron.row_formats import ROW_FORMATS
from qwenlong.rl.micro_batches import MicroBatchPlanner, Plan
from qwenlong.rl.policy_group import PolicyGroup, rendezvous_address
from qwenlong.rl.rollout.vllm_transfer import ExportOrder, RankSender, TransferPlan

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.rollout.colocation import Colocation

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
        self.vllm_sender: RankSender | None = None

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
        if parallel.pipeline > 1 and self.hf_config.tie_word_embeddings:
            # The first and last stages would each hold the shared matrix and have to sum its
            # gradients over an embedding group; Qwen3-MoE does not tie them.
            raise ConfigError(
                "policy.megatron.parallel.pipeline > 1 needs untied embeddings "
                f"({self.model_path} has tie_word_embeddings: true)"
            )
        self.model = build_model(self.hf_config, self.config)
        try:
            load_hf_into_megatron(self.model, self.model_path)
        except CheckpointError as err:
            raise CheckpointError(f"{self.where}: {first_line(err)}") from None
        self.optimizer = make_optimizer(self.model, self.config)
        self.row_format = ROW_FORMATS[self.config.layers]
        self.expert_load = ExpertLoad(self.model) if self.config.moe.log_expert_load else None
        self.vocab_size = int(self.hf_config.vocab_size)
        self.tp_group = ps.get_tensor_model_parallel_group()
        self.vocab_start = ps.get_tensor_model_parallel_rank() * (
            self.vocab_size // ps.get_tensor_model_parallel_world_size()
        )
        self.cp_group = ps.get_context_parallel_group()
        self.cp_size = dist.get_world_size(self.cp_group)
        self.cp_rank = dist.get_rank(self.cp_group)
        self.cp = (self.cp_size, self.cp_rank)
        self.pipeline = Pipeline(
            self.model.config.hidden_size,
            self.model.config.params_dtype,
            self.config.device,
            split_by=parallel.tensor if parallel.sequence_parallel else 1,
        )
        # One rank reports for its data-parallel share: the one holding the logits' first
        # tensor-parallel shard and first context-parallel chunks, on the last stage.
        reports = (
            ps.get_tensor_model_parallel_rank() == 0
            and self.cp_rank == 0
            and ps.is_pipeline_last_stage()
        )
        self.layout = RankLayout(
            ps.get_data_parallel_rank(), ps.get_data_parallel_world_size(), reports
        )
        return self.layout

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

        def record(micro: list[int], row: PackedRow, logits: Tensor) -> Tensor:
            scored = self._scored(batch, micro, row, logits, wanted, self.config.temperature)
            for positions, values, entropies in self._across_context(scored):
                logprobs[positions] = values.float().cpu()
                entropy[positions] = entropies.float().cpu()
            return logits.sum() * 0.0

        self._run(batch, micro_batches, record, train=False)
        return TokenStats(logprobs=logprobs, entropy=entropy)

    def train_step(
        self, batch: PackedBatch, update: PolicyUpdate, global_sequences: int, micro_batches: Plan
    ) -> StepStats:
        check_batch(batch, self.vocab_size, self.where)
        mask = check_update(batch, update, self.where)
        sequence_index = batch.sequence_index()
        self.model.train()
        self._scale_router_losses(len(micro_batches))
        total, extra = 0.0, {}
        if self.expert_load is not None:
            self.expert_load.start()

        def rl_loss(micro: list[int], row: PackedRow, logits: Tensor) -> Tensor:
            nonlocal total
            scored = self._scored(batch, micro, row, logits, mask, self.config.temperature)
            positions, logprobs, _ = scored
            if positions.numel() == 0:
                return logprobs.sum() * 0.0  # no tokens here: still take part in collectives
            device = logprobs.device
            loss, stats = compute_loss(
                logprobs,
                _pick(update.old_logprobs, positions, device),
                _pick(update.ref_logprobs, positions, device),
                _pick(update.advantages, positions, device),
                torch.ones(positions.numel(), dtype=torch.bool, device=device),
                update.global_tokens,
                self.loss,
                seq_index=sequence_index[positions].to(device),
                global_sequences=global_sequences,
                is_weights=_pick(update.is_weights, positions, device),
                token_weights=_pick(update.token_weights, positions, device),
            )
            total += float(loss.detach())
            for key, value in stats.items():
                extra[key] = extra.get(key, 0.0) + value
            return loss

        self._run(batch, micro_batches, rl_loss, train=True)
        total, extra = self._sum_over_context(total, extra)
        grad_norm = self._apply_gradients(extra)
        report = self.layout.reports and self.layout.data_parallel_rank == 0
        extra.update(router_losses(len(micro_batches), report))
        if self.expert_load is not None:
            parallel = self.config.parallel
            duplicated = 1 if parallel.sequence_parallel else parallel.tensor
            extra.update(self.expert_load.finish(duplicated, report=report))
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra)

    def sft_step(self, batch: PackedBatch, global_tokens: int, micro_batches: Plan) -> StepStats:
        check_batch(batch, self.vocab_size, self.where)
        mask = batch.loss_mask.bool()
        check_trainable(batch, mask, "loss_mask", global_tokens, self.where)
        self.model.train()
        self._scale_router_losses(len(micro_batches))
        total = 0.0

        def nll(micro: list[int], row: PackedRow, logits: Tensor) -> Tensor:
            nonlocal total
            _, logprobs, _ = self._scored(batch, micro, row, logits, mask, 1.0)
            loss = -logprobs.sum() / max(global_tokens, 1)
            total += float(loss.detach())
            return loss

        self._run(batch, micro_batches, nll, train=True)
        total, extra = self._sum_over_context(total, {})
        grad_norm = self._apply_gradients(extra)
        return StepStats(total, grad_norm, batch.num_tokens, int(mask.sum()), extra)

    # --- weights and state --------------------------------------------------------------

    def export_weights(self) -> Iterator[tuple[str, Tensor]]:
        """Every rank takes part; rank 0 yields each HF tensor on the CPU."""
        from qwenlong.rl.megatron.convert import export_megatron_to_hf

        for name, tensor in export_megatron_to_hf(self.model):
            yield name, tensor.to("cpu", copy=True)

    def export_order(self) -> ExportOrder:
        """(HF name, shape, dtype) of each tensor the export yields, in its order."""
        from qwenlong.rl.megatron.convert import export_order

        return export_order(self.model)

    def send_weights_to_vllm(self, plan: TransferPlan) -> None:
        """vLLM's own transfer (qwenlong.rl.rollout.vllm_transfer): every rank runs its side of
        the export's gathers; under IPC every rank then holds and shares every tensor."""
        from qwenlong.rl.megatron.convert import export_megatron_to_hf

        if self.vllm_sender is None:
            export = functools.partial(
                export_megatron_to_hf, self.model, everywhere=plan.everywhere
            )
            self.vllm_sender = RankSender(plan, self.rank, self.export_order(), export)
        self.vllm_sender.send()

    def receive_weights(self, chunk: list[tuple[str, Tensor]], last: bool) -> None:
        """One chunk of an HF weight stream (whole tensors; each rank keeps its slices)."""
        self.incoming.receive(chunk, last)
        if last:
            self.optimizer.weights_changed()

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
        self.optimizer.save(folder, self.rank)

    def load_optimizer_state(self, folder: str) -> None:
        self.optimizer.load(folder, self.rank, self.where)

    def set_learning_rate_scale(self, scale: float) -> None:
        self.optimizer.set_lr(self.config.lr * scale)

    # --- internals ----------------------------------------------------------------------

    def _weight_receiver(self) -> Any:
        from qwenlong.rl.megatron.convert import MegatronWeightReceiver

        return MegatronWeightReceiver(self.model)

    def _run(self, batch: PackedBatch, micro_batches: Plan, visit: Visit, train: bool) -> None:
        """Each micro-batch of `micro_batches` through this rank's pipeline stage, packed in
        its row format; `visit` scores the logits on the last stage. An empty micro-batch runs
        one padding token, so that every rank takes part in the MoE dispatch."""
        rows = []
        for micro in micro_batches:
            sub = batch.select(micro) if micro else PackedBatch.from_sequences([[0]], [[]])
            rows.append((micro, self.row_format.build(sub, self._row_length(sub), *self.cp)))
        self.pipeline.run(self.model, self._forward, rows, visit, train)

    def _forward(self, row: PackedRow) -> Tensor:
        """This stage's layers over `row`: logits [1, n, vocab / TP] on the last stage, the
        hidden states [n, 1, hidden] elsewhere."""
        inputs = row.to(self.config.device)
        return self.optimizer.module(
            input_ids=inputs.ids,
            position_ids=inputs.positions,
            attention_mask=inputs.mask,
            packed_seq_params=inputs.packed,
        )

    def _scored(
        self,
        batch: PackedBatch,
        micro: list[int],
        row: PackedRow,
        logits: Tensor,
        wanted: Tensor | None,
        temperature: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(packed positions, log-probs, entropy) of the predicted tokens of `micro` (only the
        `wanted` ones) from the logits of its row."""
        from qwenlong.rl.megatron.vocab_parallel import vocab_parallel_logprobs_and_entropy

        logits = logits[0]
        offsets = batch.token_positions(micro) if micro else torch.zeros(1, dtype=torch.long)
        predicts = row.predicts.clone()
        if wanted is not None and micro:
            chosen = predicts.nonzero().squeeze(1)
            predicts[chosen] = wanted[offsets[row.local[chosen] + 1]]
        at = predicts.nonzero().squeeze(1)
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(
            logits[at.to(logits.device)],
            row.targets[at].to(logits.device),
            temperature,
            self.tp_group,
            self.vocab_start,
            vocab_size=self.vocab_size,
        )
        if not micro:
            return torch.zeros(0, dtype=torch.long), logits.sum() * 0.0, logits.sum() * 0.0
        return offsets[row.local[at] + 1], logprobs, entropy

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

    def _row_length(self, sub: PackedBatch) -> int:
        """The packed row's length over the CP group: the fewest tokens its format allows, or
        with the all-gather dispatcher and expert parallel, the longest of all ranks' (that
        dispatcher gathers equal-sized token blocks from the expert-parallel ranks; all-to-all
        exchanges the sizes and needs no padding)."""
        tokens = self.row_format.tokens(sub, self.cp_size)
        if self.config.moe.token_dispatcher == "allgather" and self.config.parallel.expert > 1:
            longest = torch.tensor([tokens])
            dist.all_reduce(longest, op=dist.ReduceOp.MAX)
            tokens = int(longest)
        return tokens

    def _scale_router_losses(self, micro_batches: int) -> None:
        """Make the routers' auxiliary and z-losses a mean over the step's micro-batches and
        data x context parallel copies, as Megatron's schedules do (which this policy's own
        loop replaces): their gradients are summed over both, like the RL loss's, whose
        normalisation (the global token count) they do not share."""
        from megatron.core import parallel_state as ps
        from megatron.core.transformer.moe.moe_utils import MoEAuxLossAutoScaler

        copies = dist.get_world_size(ps.get_data_parallel_group(with_context_parallel=True))
        scale = 1.0 / (max(micro_batches, 1) * copies)
        MoEAuxLossAutoScaler.set_loss_scale(torch.tensor(scale, device=self.config.device))

    def _apply_gradients(self, extra: dict[str, float]) -> float:
        """Reduce, clip and apply the accumulated gradients (qwenlong.rl.megatron.optimizer)."""
        norm, applied = self.optimizer.step()
        extra["step_skipped"] = 0.0 if applied else 1.0
        return norm


def _pick(values: Tensor | None, positions: Tensor, device: torch.device) -> Tensor | None:
    """The per-token `values` of the scored `positions`, as float32 on the log-probs' device."""
    return None if values is None else values[positions].float().to(device)


def start_megatron_policy(
    config: TrainConfig, model_path: str, lr: float | None, placement: Colocation | None
) -> PolicyGroup:
    """`policy.num_workers` Megatron ranks from `model_path` (in this process without Ray; in
    the bundles of `placement` when engines share their GPUs)."""
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
        actor_options=placement and [placement.rank_options(rank) for rank in range(workers)],
    )
