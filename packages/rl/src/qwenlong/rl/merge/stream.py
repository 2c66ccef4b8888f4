"""The merge as a stream: read one tensor from every checkpoint, SCE it, write it, forget it.

Peak memory is one float32 tensor per model (their stacked deltas) plus the base tensor and a
handful of temporaries and masks of that same size, whatever the checkpoint size: measured at
about 12 tensor-sizes for two models, so the largest Qwen3-30B-A3B tensor (the 151936 x 2048
embedding, 1.2 GB in float32) merges in about 15 GB. Every model is checked against the base
(names, shapes) before anything is written, the output is built under a temporary name and
renamed when complete (an earlier output is moved aside first, then deleted), and the base's
config, tokenizer and generation files are copied so transformers loads the result as it is.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from qwenlong.core.config_loader import write_resolved_config
from qwenlong.core.errors import ConfigError
from qwenlong.core.progress import track
from qwenlong.core.safetensors_io import CODES, DTYPES, INDEX_FILE, ShardedWriter, TensorSpec
from qwenlong.rl.merge.checkpoint import (
    MERGEABLE,
    CheckpointError,
    SafetensorsCheckpoint,
    TensorSource,
    check_compatible,
)
from qwenlong.rl.merge.config import MergeConfig
from qwenlong.rl.merge.sce import compute_dtype, matrix_groups, sce_merge_deltas

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack")
"""Files of the base that are weights, not copied (the merge writes its own)."""

SKIPPED_FILES = frozenset({INDEX_FILE, "pytorch_model.bin.index.json"})

OUTPUT_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


@dataclass(frozen=True)
class OutputTensor:
    """One tensor of the output and whether it is merged or taken from the base."""

    planned: TensorSpec
    merged: bool


@dataclass
class MergeStats:
    """What the merge did, summed over tensors (written to merge_summary.json)."""

    tensors_merged: int = 0
    tensors_copied: int = 0
    entries: int = 0
    """Entries of the merged tensors."""
    entries_selected: int = 0
    """Of those, kept by SCE's select step."""
    entries_changed: int = 0
    """Of those, with at least one delta surviving erase (the rest keep the base value)."""
    weight_sums: list[float] = field(default_factory=list)
    """Per model: its SCE coefficients summed over matrices, each weighted by the matrix's entries."""

    def mean_weights(self) -> list[float]:
        """Per model: its average coefficient over merged entries (each matrix counted by size)."""
        return [total / self.entries if self.entries else 0.0 for total in self.weight_sums]


def plan_outputs(
    base: TensorSource, copy_from_base: Sequence[str], dtype: str | None
) -> list[OutputTensor]:
    """Output tensors in the base's order. Floating tensors are merged unless a pattern of
    `copy_from_base` matches their name; their dtype is `dtype` or, when None, the base's.
    Non-floating tensors are copied in the base's dtype."""
    plan = []
    for name in base.names():
        info = base.info(name)
        floating = info.dtype in MERGEABLE
        merged = floating and not any(fnmatch.fnmatchcase(name, p) for p in copy_from_base)
        code = OUTPUT_DTYPES[dtype] if floating and dtype else info.dtype
        if code not in CODES.values():
            raise CheckpointError(f"{info.file}: tensor {name!r} has unsupported dtype {code}")
        plan.append(OutputTensor(TensorSpec(name, info.shape, code), merged))
    return plan


def stream_merge(
    base: TensorSource,
    models: Sequence[TensorSource],
    plan: Sequence[OutputTensor],
    write: Callable[[str, Tensor], None],
    *,
    top_k: float = 1.0,
    sign_election: str = "sum",
    device: str = "cpu",
) -> MergeStats:
    """SCE every planned tensor and hand it to `write`, holding one tensor per model at a time.

    Model tensors are read one by one into a preallocated stack of deltas and dropped at once,
    so at most two source tensors (the base's and one model's) are alive at any moment.
    """
    stats = MergeStats(weight_sums=[0.0] * len(models))
    for item in track(plan, description="SCE merge"):
        name, out_dtype = item.planned.name, DTYPES[item.planned.dtype]
        if not item.merged:
            write(name, base.get(name).to(out_dtype))
            stats.tensors_copied += 1
            continue
        sources = (base, *models)
        compute = compute_dtype(*(DTYPES[source.info(name).dtype] for source in sources))
        base_c = base.get(name).to(device=device, dtype=compute)
        deltas = torch.empty((len(models), *base_c.shape), dtype=compute, device=device)
        for i, model in enumerate(models):
            deltas[i] = model.get(name).to(device=device, dtype=compute)
            deltas[i] -= base_c
        result = sce_merge_deltas(base_c, deltas, top_k, sign_election)
        del deltas, base_c
        write(name, result.merged.to(device="cpu", dtype=out_dtype))
        groups, entries = matrix_groups(item.planned.shape)
        stats.tensors_merged += 1
        stats.entries += groups * entries
        stats.entries_selected += int(result.selected.sum())
        stats.entries_changed += int(result.keep.any(dim=0).sum())
        for i, total in enumerate(result.weights.sum(dim=1).tolist()):
            stats.weight_sums[i] += total * entries
        del result  # the next tensor must not find this one's output still alive
    return stats


@dataclass(frozen=True)
class MergeSummary:
    """The result of `merge_checkpoints`."""

    output: str
    shards: list[str]
    stats: MergeStats
    seconds: float

    def to_json(self) -> dict[str, object]:
        """A flat JSON-ready dict, with each model's mean coefficient."""
        data = {k: v for k, v in asdict(self).items() if k != "stats"}
        data.update(asdict(self.stats))
        data["mean_weights"] = self.stats.mean_weights()
        del data["weight_sums"]
        return data


def merge_checkpoints(config: MergeConfig) -> MergeSummary:
    """SCE-merge `config.models` onto `config.base` into `config.output` (see `MergeConfig`)."""
    start = time.perf_counter()
    output = _check_output(config)
    staging = output.parent / f".{output.name}.partial"
    for leftover in (staging, _replaced(output)):  # of a merge killed before it finished
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir(parents=True)
    try:
        shards, stats = _merge_into(config, staging)
        copy_side_files(config.base, staging, config.dtype)
        write_resolved_config(config, staging / "merge_config.yaml")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary = MergeSummary(str(output), shards, stats, time.perf_counter() - start)
    (staging / "merge_summary.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    _move_into_place(staging, output)
    return summary


def _replaced(output: Path) -> Path:
    """Where an earlier output is moved while the new one takes its place."""
    return output.parent / f".{output.name}.old"


def _move_into_place(staging: Path, output: Path) -> None:
    """Rename the finished `staging` to `output`. An earlier output (overwrite) is renamed aside
    first and deleted last: deleting it in place would leave, to a kill during the deletion, a
    folder at `output` with some of its shards gone. A kill now leaves the old model or the new
    one at `output`, whole, or (between the two renames) nothing there."""
    old = _replaced(output)
    if output.exists():
        output.rename(old)
    staging.rename(output)
    if old.exists():
        shutil.rmtree(old)


def _merge_into(config: MergeConfig, staging: Path) -> tuple[list[str], MergeStats]:
    """Open and check every checkpoint, then stream the merged tensors into `staging`."""
    with ExitStack() as stack:
        base = stack.enter_context(SafetensorsCheckpoint(config.base, "base"))
        models = [
            stack.enter_context(SafetensorsCheckpoint(path, f"models[{i}]"))
            for i, path in enumerate(config.models)
        ]
        check_compatible(base, list(models))
        plan = plan_outputs(base, config.copy_from_base, config.dtype)
        writer = stack.enter_context(
            ShardedWriter(staging, [item.planned for item in plan], int(config.max_shard_size))
        )
        stats = stream_merge(
            base,
            models,
            plan,
            writer.write,
            top_k=config.top_k,
            sign_election=config.sign_election,
            device=config.device,
        )
        return [path.name for path in writer.finish()], stats


def copy_side_files(base: Path, out: Path, dtype: str | None) -> list[str]:
    """Copy the base's non-weight files (config, tokenizer, chat template, generation config).

    When the output dtype was changed, config.json's dtype is rewritten to match, so loading with
    `dtype="auto"` gives the tensors' own dtype.
    """
    copied = []
    for path in sorted(Path(base).iterdir()):
        if not path.is_file() or path.name in SKIPPED_FILES:
            continue
        if path.name.endswith(WEIGHT_SUFFIXES):
            continue
        shutil.copy2(path, out / path.name)
        copied.append(path.name)
    config_file = out / "config.json"
    if dtype and config_file.is_file():
        hf_config = json.loads(config_file.read_text(encoding="utf-8"))
        for key in ("dtype", "torch_dtype"):
            if key in hf_config:
                hf_config[key] = dtype
        config_file.write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
    return copied


def _check_output(config: MergeConfig) -> Path:
    """The output path, refused when it is an input or (without overwrite) already has files."""
    output = config.output.resolve()
    inputs = {config.base.resolve(), *(path.resolve() for path in config.models)}
    if output in inputs:
        raise ConfigError(f"merge output {config.output} is one of the input checkpoints")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"merge output {config.output} exists and is not a directory")
    if output.exists() and any(output.iterdir()) and not config.overwrite:
        raise ConfigError(
            f"merge output {config.output} exists and is not empty (overwrite: true replaces it)"
        )
    return output
