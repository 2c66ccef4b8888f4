"""Each policy rank's optimizer state in a folder the driver names (checkpoints, the SFT warm
start): written and read by the rank itself, so nothing the size of the optimizer passes
through the driver, and a sharded optimizer fits the same layout (one file per rank)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from qwenlong.core.errors import CheckpointError, first_line


def optimizer_file(folder: str | Path, rank: int) -> Path:
    """Where rank `rank` keeps its optimizer state inside an optimizer folder."""
    return Path(folder) / f"rank_{rank:05d}.pt"


def save_optimizer(optimizer: torch.optim.Optimizer, folder: str | Path, rank: int) -> Path:
    """Write `optimizer`'s state (moments, step counts), copied to the CPU."""
    path = optimizer_file(folder, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_to_cpu(optimizer.state_dict()), path)
    return path


def load_optimizer(
    optimizer: torch.optim.Optimizer,
    folder: str | Path,
    rank: int,
    settings: Mapping[str, Any],
    where: str,
) -> None:
    """Read rank `rank`'s state back into `optimizer`. The config's hyper-parameters
    (`settings`: lr, betas, weight decay, eps) win over the file's, so the config stays the
    source of truth; a missing or mismatched file is one `CheckpointError` line."""
    path = optimizer_file(folder, rank)
    if not path.is_file():
        raise CheckpointError(f"{where}: no optimizer state at {path}")
    try:
        optimizer.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{where}: cannot load optimizer state {path}: {first_line(err)}"
        ) from None
    for group in optimizer.param_groups:
        group.update(settings)


def _to_cpu(value: Any) -> Any:
    """Deep copy of nested dicts/lists/tuples with every tensor cloned to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value
