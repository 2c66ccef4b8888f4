"""Resumable training checkpoints: weights, optimizer, sampler, AEPO, trainer state and RNG.

    RUN/checkpoints/step_000123/
        model.safetensors                   weights (HF on-disk names), or when larger than one
        model-00001-of-00003.safetensors    shard: shards plus model.safetensors.index.json
        optimizer/                          each policy rank's own optimizer state file
        rng.json, rng.pt                    python / numpy RNG state; torch CPU (and CUDA) state
        state.json                          step, config fingerprint and resolved config, sampler,
                                            AEPO and trainer state; written last

A checkpoint is written into `RUN/checkpoints/.tmp-...` and renamed into place when complete,
so a run killed mid-write leaves a temp folder that is ignored (and removed by the next save),
never a half checkpoint that resume would pick up. Weights arrive as a stream of (name, tensor)
pairs (the `Policy.export_weights` iterator) and are written as they come
(qwenlong.core.safetensors_io); the optimizer state is written by the policy's ranks themselves
into the temp folder, so none of it passes through the driver.

The config fingerprint guards resume: a run directory resumed with a different config would
silently continue another experiment. It hashes the resolved config minus the fields that may
legitimately change on resume (`RESUME_MUTABLE_KEYS`); `load_checkpoint` compares it before
anything heavy is read and names the differing fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor

from qwenlong.core import run_guard
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.safetensors_io import read_sharded, weight_files, write_sharded

FORMAT_VERSION = 2
"""Layout version written to state.json; a checkpoint of another version is refused.
2: HF on-disk weight names (one tensor per expert) and one optimizer file per rank."""

CHECKPOINTS = "checkpoints"
"""Folder of the run directory holding the checkpoints."""
STATE_FILE = "state.json"
"""Written last: a step folder without it is not a checkpoint."""
OPTIMIZER_DIR = "optimizer"
RNG_JSON = "rng.json"
RNG_TORCH = "rng.pt"
TEMP_PREFIX = "."
"""Temp and discarded folders start with a dot, which no step folder does."""
_STEP_DIR = re.compile(r"^step_(\d+)$")

DEFAULT_SHARD_BYTES = 2 * 1024**3
"""Largest weights file before a new shard starts (2 GiB; HF's save_pretrained uses 5 GB).
Smaller shards bound the memory held while streaming. Our choice."""

RESUME_MUTABLE_KEYS: frozenset[str] = frozenset(
    {
        # How long to train: extending a finished run is a resume, not a new experiment.
        "steps",
        "total_steps",
        "max_steps",
        # Where the run lives: a moved or renamed run directory is the same run.
        "out",
        "out_dir",
        "output_dir",
        "run_dir",
        # How often to checkpoint and how many to keep.
        "checkpoint_every",
        "save_every",
        "keep_checkpoints",
        "keep_last",
        # What is reported and how often; never what is computed.
        "logging",
        "log_every",
        "eval_every",
        "heldout.every",
        "plot_every",
        "debug",
        # Which Ray cluster runs the job.
        "ray.address",
    }
)
"""Config fields left out of the fingerprint. An entry matches every field whose dotted path
contains it as consecutive parts: "steps" matches `train.steps` and `stages.1.steps`, "logging"
a whole section, "ray.address" `train.ray.address`. Everything else (model, data, algorithm,
batch sizes, seeds, worker counts) must match to resume."""


def flat_config(
    config: BaseModel | Mapping[str, Any], exclude: Iterable[str] = RESUME_MUTABLE_KEYS
) -> dict[str, Any]:
    """The resolved config as {dotted path: JSON value}, minus the `exclude` fields (the keys a
    resume may change): core's `run_guard.flat_config`, which every resuming command shares."""
    return run_guard.flat_config(config, exclude)


def _hash(flat: Mapping[str, Any]) -> str:
    text = json.dumps(flat, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def config_fingerprint(
    config: BaseModel | Mapping[str, Any], exclude: Iterable[str] = RESUME_MUTABLE_KEYS
) -> str:
    """sha256 of the resolved config without the resume-mutable fields (hex)."""
    return _hash(flat_config(config, exclude))


# --------------------------------------------------------------------------- RNG


def capture_rng() -> tuple[dict[str, Any], dict[str, Any]]:
    """(JSON-able python and numpy global RNG states, torch CPU and CUDA RNG states)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    json_part = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    torch_part: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        torch_part["cuda"] = torch.cuda.get_rng_state_all()
    return json_part, torch_part


def restore_rng(json_part: Mapping[str, Any], torch_part: Mapping[str, Any]) -> None:
    """Set the global RNGs back to a `capture_rng` state (CUDA only where it was saved and is
    present now, with the same device count)."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch_part["cpu"])
    cuda = torch_part.get("cuda")
    if cuda is not None and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------- writing


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never outruns the data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any, what: str) -> None:
    try:
        text = json.dumps(data, indent=1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint {what} is not JSON-serialisable: {err}") from None
    path.write_text(text + "\n", encoding="utf-8")


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    weights: Iterable[tuple[str, Tensor]],
    write_optimizer: Callable[[Path], None] | None,
    sampler_state: Mapping[str, Any] | None,
    aepo_state: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None,
    config_fingerprint: str,
    *,
    config: BaseModel | Mapping[str, Any] | None = None,
    keep_last: int | None = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Write `RUN/checkpoints/step_{step:06d}` atomically and return its path.

    `write_optimizer(folder)` (the policy's `save_optimizer_state`) writes the optimizer state
    into the checkpoint's optimizer folder. `config` (the resolved training config) is stored
    flattened so a mismatch on resume can name the differing fields; its fingerprint must equal `config_fingerprint`. The global
    RNG states are captured here. `keep_last` then deletes all but the newest K checkpoints.
    A checkpoint of the same step already present is replaced.
    """
    if keep_last is not None and keep_last < 1:
        raise ConfigError(f"keep_last is {keep_last}; keep at least 1 checkpoint")
    flat = flat_config(config) if config is not None else None
    if flat is not None and _hash(flat) != config_fingerprint:
        raise ValueError("save_checkpoint: config_fingerprint does not match the given config")
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step_{step:06d}"
    temp = root / f"{TEMP_PREFIX}tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        shards = len(write_sharded(temp, weights, max_shard_bytes))
        if write_optimizer is not None:
            write_optimizer((temp / OPTIMIZER_DIR).resolve())
        rng_json, rng_torch = capture_rng()
        _write_json(temp / RNG_JSON, rng_json, "RNG state")
        torch.save(rng_torch, temp / RNG_TORCH)
        state = {
            "format": FORMAT_VERSION,
            "step": int(step),
            "config_fingerprint": config_fingerprint,
            "config": flat,
            "weight_shards": shards,
            "sampler": sampler_state,
            "aepo": aepo_state,
            "extra": dict(extra or {}),
        }
        _write_json(temp / STATE_FILE, state, "state (sampler, AEPO or extra)")
        for item in temp.rglob("*"):
            _fsync(item)
        if final.exists():
            discarded = root / f"{TEMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
            final.rename(discarded)
            temp.rename(final)
            shutil.rmtree(discarded, ignore_errors=True)
        else:
            temp.rename(final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if keep_last is not None:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old)
    return final


# --------------------------------------------------------------------------- reading


def _read_state(folder: Path) -> dict[str, Any] | None:
    """state.json of a complete checkpoint folder, or None when it is not one."""
    match = _STEP_DIR.match(folder.name)
    if match is None or not folder.is_dir():
        return None
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("step") != int(match.group(1)):
        return None
    return state


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest step first; temp and torn ones skipped."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(s["step"], p) for p in root.iterdir() if (s := _read_state(p)) is not None]
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of `run_dir`, or None (a fresh run)."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


@dataclass
class Checkpoint:
    """A loaded checkpoint: small state in memory, weights and optimizer read on demand."""

    path: Path
    step: int
    config_fingerprint: str
    sampler_state: dict[str, Any] | None
    aepo_state: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    """The flattened resolved config it was written with, when it was stored."""

    def weight_files(self) -> list[Path]:
        """The safetensors files, in shard order."""
        return weight_files(self.path)

    def weights(self) -> Iterator[tuple[str, Tensor]]:
        """(HF on-disk name, tensor) pairs, one shard open at a time: feed
        `Policy.load_weights`."""
        return read_sharded(self.path)

    @property
    def optimizer_folder(self) -> Path | None:
        """The folder the policy ranks wrote their optimizer state into; None if not saved."""
        folder = self.path / OPTIMIZER_DIR
        return folder.resolve() if folder.is_dir() else None

    def restore_rng(self) -> None:
        """Put the global python, numpy and torch RNGs back where they were at save time."""
        rng_json = json.loads((self.path / RNG_JSON).read_text(encoding="utf-8"))
        rng_torch = torch.load(self.path / RNG_TORCH, weights_only=True)
        restore_rng(rng_json, rng_torch)


def load_checkpoint(
    path: str | Path,
    expected_fingerprint: str | None,
    *,
    expected_config: BaseModel | Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Read a checkpoint folder's state after checking it belongs to this config.

    Only state.json is read here, so a mismatch fails before any tensor is loaded: a
    `ConfigError` naming the differing fields when both configs are known (pass
    `expected_config`), else both fingerprints. `expected_fingerprint` None skips the check
    (a stage initialised from another stage's checkpoint).
    """
    folder = Path(path)
    state = _read_state(folder)
    if state is None:
        raise DatasetError(f"{folder}: not a complete checkpoint (no readable {STATE_FILE})")
    if state.get("format") != FORMAT_VERSION:
        raise DatasetError(
            f"{folder}: checkpoint format {state.get('format')!r}; this code reads {FORMAT_VERSION}"
        )
    saved = state["config_fingerprint"]
    if expected_fingerprint is not None and saved != expected_fingerprint:
        stored = state.get("config")
        if stored is not None and expected_config is not None:
            detail = run_guard.config_differences(stored, flat_config(expected_config))
        else:
            detail = f"fingerprint {saved[:12]} in the checkpoint, {expected_fingerprint[:12]} now"
        raise ConfigError(
            f"{folder} was written by a different config ({detail}); use a new output "
            "directory or the original config"
        )
    return Checkpoint(
        path=folder,
        step=int(state["step"]),
        config_fingerprint=saved,
        sampler_state=state.get("sampler"),
        aepo_state=state.get("aepo"),
        extra=state.get("extra") or {},
        config=state.get("config"),
    )
