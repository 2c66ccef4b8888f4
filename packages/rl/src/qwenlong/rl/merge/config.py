"""`qwenlong merge CONFIG.yaml`: which checkpoints to merge with SCE, and how.

The recipe (RECIPE.md section 2) merges the Stage-3 model with the Memory-RL expert before
Stage-4; the paper names the method (FuseChat's SCE) but not its base or its top-k fraction, so
those are ours and say so below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, field_validator

from qwenlong.core.config import ConfigModel

OutputDtype = Literal["float32", "bfloat16", "float16"]


class MergeConfig(ConfigModel):
    """Base and models in (HF directories with safetensors), one merged HF directory out."""

    base: Path
    """Directory of the checkpoint every model's delta is taken from. The paper does not say
    which; the natural choice for the Stage-3 + Memory-RL merge is the model both were trained
    from (the starting Qwen3-30B-A3B-Thinking). Its config and tokenizer files are copied to the
    output."""
    models: list[Path] = Field(min_length=1)
    """Directories of the models to merge (the paper merges two: Stage-3 and the Memory-RL
    expert). Every one must hold exactly the base's tensor names and shapes."""
    output: Path
    """Directory to write: sharded safetensors, their index, and the base's other files. It is
    written beside itself under a temporary name and renamed at the end, so a killed merge never
    leaves a directory that looks complete."""
    overwrite: bool = False
    """Replace an existing non-empty `output`; without it that is an error."""
    top_k: float = Field(default=1.0, gt=0.0, le=1.0)
    """SCE "select": per matrix, keep the entries whose delta variance across the models is in
    the top `top_k` fraction (ties at the cut are all kept); the rest stay at the base value.
    1.0 keeps every entry. Not published for QwenLong-L1.5; our default 1.0 turns selection off,
    since with two models the variance only measures how much they disagree."""
    sign_election: str = "sum"
    """SCE "erase": how the sign each entry keeps is elected (registry `SIGN_ELECTIONS`):
    `sum` (FuseChat: the sign of the sum of the deltas), `weighted_sum` (the sign of the
    SCE-weighted sum) or `count` (the sign most models agree on). Deltas of the other sign are
    erased."""
    dtype: OutputDtype | None = None
    """Dtype of the merged floating-point tensors; null keeps each tensor's dtype in the base
    (bfloat16 for Qwen3 checkpoints). The arithmetic itself runs in float32 or wider."""
    copy_from_base: list[str] = Field(default_factory=list)
    """fnmatch patterns of tensor names taken from the base unchanged instead of merged (for
    example `*.mlp.gate.weight` to keep the base's MoE routers). Non-floating tensors (integer
    buffers, masks) are always taken from the base."""
    max_shard_size: ByteSize = ByteSize(5 * 10**9)
    """Largest output shard, accepting "5GB" or "500MiB"; a single larger tensor gets a shard of
    its own. Our default: transformers saves 50GB shards, smaller ones download and load in
    parallel and still number only a dozen for a 30B bfloat16 model."""
    device: str = "cpu"
    """Torch device for the arithmetic ("cuda" speeds up the selection on large matrices); the
    tensors are read and written on the CPU either way."""

    @field_validator("sign_election")
    @classmethod
    def _known_sign_election(cls, name: str) -> str:
        from qwenlong.rl.merge.sce import SIGN_ELECTIONS

        if name not in SIGN_ELECTIONS:
            raise ValueError(f"unknown sign election {name!r}; known: {', '.join(SIGN_ELECTIONS)}")
        return name
